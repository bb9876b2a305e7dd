//! Thumbnail generation: decode (with limits against decompression bombs), resize, re-encode.
//! Pure CPU work on byte slices; the service runs it in `spawn_blocking`.
//!
//! Rules (spec "Thumbnails"): never upscale; `scale` keeps the aspect ratio and fits the
//! requested box; `crop` fills the box and cuts the overflow, centred. When the original is
//! smaller than the box we still re-encode it (at its own size) rather than serve it as is: the
//! output is then always a static PNG/JPEG, safe to serve inline, with EXIF metadata (location,
//! device) stripped.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

/// Largest source edge we decode; bigger images get 413 instead of a thumbnail.
pub const MAX_SOURCE_DIMENSION: u32 = 8192;
/// Decoder allocation budget (a full 8192x8192 RGBA image is exactly 256 MiB).
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
const JPEG_QUALITY: u8 = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Scale,
    Crop,
}

impl Method {
    /// The name used in cache keys and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Scale => "scale",
            Method::Crop => "crop",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub width: u32,
    pub height: u32,
    pub method: Method,
}

pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ThumbnailError {
    /// Not an image we can decode (or a corrupt one).
    Unsupported(String),
    /// Over the dimension or memory limits.
    TooLarge(String),
    /// Encoding failed: our fault, not the content's.
    Internal(String),
}

pub fn generate(original: &[u8], spec: Spec) -> Result<Thumbnail, ThumbnailError> {
    let (img, format) = decode(original)?;
    let keep_png = format == ImageFormat::Png || img.color().has_alpha();
    encode(&resize(img, spec), keep_png)
}

pub(super) fn decode(bytes: &[u8]) -> Result<(DynamicImage, ImageFormat), ThumbnailError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ThumbnailError::Internal(e.to_string()))?;
    let format = reader
        .format()
        .ok_or_else(|| ThumbnailError::Unsupported("unknown image format".into()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_DIMENSION);
    limits.max_image_height = Some(MAX_SOURCE_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits.clone());
    // `into_decoder` checks the declared dimensions before any pixel is allocated.
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    limits
        .reserve(decoder.total_bytes())
        .map_err(map_image_error)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    // Phone photos are stored sideways with an EXIF rotation; we strip EXIF, so apply it.
    img.apply_orientation(orientation);
    Ok((img, format))
}

pub(super) fn map_image_error(e: ImageError) -> ThumbnailError {
    match e {
        ImageError::Limits(l) => ThumbnailError::TooLarge(l.to_string()),
        ImageError::Unsupported(_) | ImageError::Decoding(_) | ImageError::IoError(_) => {
            ThumbnailError::Unsupported(e.to_string())
        }
        ImageError::Encoding(_) | ImageError::Parameter(_) => {
            ThumbnailError::Internal(e.to_string())
        }
    }
}

/// The output dimensions for a source of `src` pixels.
pub fn output_size(src: (u32, u32), spec: Spec) -> (u32, u32) {
    let (sw, sh) = (src.0 as f64, src.1 as f64);
    let (w, h) = (spec.width as f64, spec.height as f64);
    match spec.method {
        Method::Scale => {
            let ratio = f64::min(w / sw, h / sh);
            if ratio >= 1.0 {
                return src;
            }
            (round_dim(sw * ratio), round_dim(sh * ratio))
        }
        Method::Crop => {
            if src.0 >= spec.width && src.1 >= spec.height {
                return (spec.width, spec.height);
            }
            // Too small to fill the box: the largest centred box of the requested aspect.
            crop_box(src, spec)
        }
    }
}

fn crop_box(src: (u32, u32), spec: Spec) -> (u32, u32) {
    let (sw, sh) = (src.0 as f64, src.1 as f64);
    let aspect = spec.width as f64 / spec.height as f64;
    if sw / sh > aspect {
        (round_dim(sh * aspect).min(src.0), src.1)
    } else {
        (src.0, round_dim(sw / aspect).min(src.1))
    }
}

fn round_dim(x: f64) -> u32 {
    (x.round() as u32).max(1)
}

fn resize(img: DynamicImage, spec: Spec) -> DynamicImage {
    let src = (img.width(), img.height());
    let (ow, oh) = output_size(src, spec);
    match spec.method {
        Method::Scale if (ow, oh) == src => img,
        Method::Scale => shrink(&img, (ow, oh)).resize_exact(ow, oh, FilterType::Lanczos3),
        Method::Crop if src.0 >= spec.width && src.1 >= spec.height => {
            // Scale so the box is covered, then cut the overflow (both done by resize_to_fill).
            let ratio = f64::max(ow as f64 / src.0 as f64, oh as f64 / src.1 as f64);
            let cover = (
                round_dim(src.0 as f64 * ratio),
                round_dim(src.1 as f64 * ratio),
            );
            shrink(&img, cover).resize_to_fill(ow, oh, FilterType::Lanczos3)
        }
        Method::Crop => img.crop_imm((src.0 - ow) / 2, (src.1 - oh) / 2, ow, oh),
    }
}

/// A fast box-filter pre-pass for big reductions: Lanczos on a full-size photo needs a float
/// buffer of source width x target height, and is slow. Two times the target keeps the quality.
fn shrink(img: &DynamicImage, target: (u32, u32)) -> std::borrow::Cow<'_, DynamicImage> {
    if img.width() > target.0 * 4 && img.height() > target.1 * 4 {
        std::borrow::Cow::Owned(img.thumbnail_exact(target.0 * 2, target.1 * 2))
    } else {
        std::borrow::Cow::Borrowed(img)
    }
}

fn encode(img: &DynamicImage, png: bool) -> Result<Thumbnail, ThumbnailError> {
    let mut out = Cursor::new(Vec::new());
    let internal = |e: ImageError| ThumbnailError::Internal(e.to_string());
    if png {
        let img = if img.color().has_alpha() {
            DynamicImage::ImageRgba8(img.to_rgba8())
        } else {
            DynamicImage::ImageRgb8(img.to_rgb8())
        };
        img.write_to(&mut out, ImageFormat::Png).map_err(internal)?;
        Ok(Thumbnail {
            bytes: out.into_inner(),
            content_type: "image/png",
        })
    } else {
        JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .encode_image(&img.to_rgb8())
            .map_err(internal)?;
        Ok(Thumbnail {
            bytes: out.into_inner(),
            content_type: "image/jpeg",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(width: u32, height: u32, method: Method) -> Spec {
        Spec {
            width,
            height,
            method,
        }
    }

    fn encoded(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    fn dims(bytes: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory(bytes).unwrap();
        (img.width(), img.height())
    }

    #[test]
    fn output_sizes() {
        use Method::*;
        assert_eq!(output_size((300, 200), spec(100, 100, Scale)), (100, 67));
        assert_eq!(output_size((200, 300), spec(100, 100, Scale)), (67, 100));
        assert_eq!(output_size((300, 200), spec(100, 100, Crop)), (100, 100));
        assert_eq!(output_size((300, 200), spec(320, 240, Crop)), (267, 200));
        // Never upscale.
        assert_eq!(output_size((50, 40), spec(100, 100, Scale)), (50, 40));
        assert_eq!(output_size((50, 40), spec(100, 100, Crop)), (40, 40));
        assert_eq!(output_size((1000, 1), spec(32, 32, Scale)), (32, 1));
    }

    #[test]
    fn jpeg_in_jpeg_out_with_real_dimensions() {
        let src = encoded(300, 200, ImageFormat::Jpeg);
        let t = generate(&src, spec(100, 100, Method::Scale)).unwrap();
        assert_eq!(t.content_type, "image/jpeg");
        assert_eq!(image::guess_format(&t.bytes).unwrap(), ImageFormat::Jpeg);
        assert_eq!(dims(&t.bytes), (100, 67));
        let t = generate(&src, spec(64, 64, Method::Crop)).unwrap();
        assert_eq!(dims(&t.bytes), (64, 64));
    }

    #[test]
    fn big_reduction_uses_the_prepass_and_keeps_exact_size() {
        let src = encoded(2000, 1000, ImageFormat::Png);
        let t = generate(&src, spec(96, 96, Method::Crop)).unwrap();
        assert_eq!(t.content_type, "image/png");
        assert_eq!(dims(&t.bytes), (96, 96));
        let t = generate(&src, spec(320, 240, Method::Scale)).unwrap();
        assert_eq!(dims(&t.bytes), (320, 160));
    }

    #[test]
    fn alpha_keeps_png() {
        let img = image::RgbaImage::from_pixel(40, 40, image::Rgba([1, 2, 3, 128]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(img)
            .write_to(&mut out, ImageFormat::WebP)
            .unwrap();
        let t = generate(&out.into_inner(), spec(20, 20, Method::Scale)).unwrap();
        assert_eq!(t.content_type, "image/png");
        assert!(
            image::load_from_memory(&t.bytes)
                .unwrap()
                .color()
                .has_alpha()
        );
    }

    #[test]
    fn rejects_non_images_and_bombs() {
        assert!(matches!(
            generate(b"%PDF-1.7 not an image", spec(32, 32, Method::Crop)),
            Err(ThumbnailError::Unsupported(_))
        ));
        // A valid PNG header whose data is garbage.
        let mut corrupt = encoded(10, 10, ImageFormat::Png);
        corrupt.truncate(40);
        assert!(matches!(
            generate(&corrupt, spec(32, 32, Method::Crop)),
            Err(ThumbnailError::Unsupported(_))
        ));
        // Tiny file, huge declared width: refused before decoding pixels.
        let wide = encoded(MAX_SOURCE_DIMENSION + 1, 1, ImageFormat::Png);
        assert!(matches!(
            generate(&wide, spec(32, 32, Method::Scale)),
            Err(ThumbnailError::TooLarge(_))
        ));
    }
}
