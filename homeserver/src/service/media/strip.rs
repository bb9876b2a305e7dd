//! Metadata stripping for unencrypted images: decode (orientation applied, bomb limits as for
//! thumbnails) and re-encode in the same format. Only pixels survive, so EXIF (GPS, device,
//! time), XMP, IPTC and comments are gone by construction; nothing depends on recognising each
//! kind of metadata segment. Pure CPU work; the service runs it in `spawn_blocking`.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat};

use super::resize::{ThumbnailError, decode, map_image_error};

/// High enough that clinical photographs keep their diagnostic detail.
const JPEG_QUALITY: u8 = 92;

/// The image re-encoded without metadata, in its own format (JPEG, PNG or WebP).
pub fn strip_metadata(bytes: &[u8]) -> Result<Vec<u8>, ThumbnailError> {
    let (img, format) = decode(bytes)?;
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => {
            // JPEG has no alpha; keep greyscale as greyscale.
            let img = match img {
                DynamicImage::ImageLuma8(_) => img,
                other => DynamicImage::ImageRgb8(other.to_rgb8()),
            };
            JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                .encode_image(&img)
                .map_err(map_image_error)?;
        }
        ImageFormat::Png | ImageFormat::WebP => {
            // The WebP encoder is lossless and takes 8-bit RGB(A) only.
            let img = match (format, img.color().has_alpha()) {
                (ImageFormat::Png, _) => img,
                (_, true) => DynamicImage::ImageRgba8(img.to_rgba8()),
                (_, false) => DynamicImage::ImageRgb8(img.to_rgb8()),
            };
            img.write_to(&mut out, format).map_err(map_image_error)?;
        }
        other => {
            return Err(ThumbnailError::Unsupported(format!(
                "no metadata stripping for {other:?}"
            )));
        }
    }
    Ok(out.into_inner())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A JPEG with an APP1 Exif segment carrying a GPS IFD marker and coordinates text.
    pub(in crate::service::media) fn jpeg_with_gps(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        let jpeg = out.into_inner();
        // APP1: "Exif\0\0", a TIFF header, then the marker text the test looks for.
        let mut payload = b"Exif\0\0II*\0\x08\0\0\0".to_vec();
        payload.extend_from_slice(b"GPSInfo 51.5072N 0.1276W HANDOVER-GPS-MARKER");
        let len = (payload.len() + 2) as u16;
        let mut with = jpeg[..2].to_vec(); // SOI
        with.extend_from_slice(&[0xFF, 0xE1]);
        with.extend_from_slice(&len.to_be_bytes());
        with.extend_from_slice(&payload);
        with.extend_from_slice(&jpeg[2..]);
        with
    }

    pub(in crate::service::media) fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn exif_gps_is_gone_and_the_image_is_intact() {
        let src = jpeg_with_gps(48, 32);
        assert!(contains(&src, b"HANDOVER-GPS-MARKER") && contains(&src, b"Exif"));
        assert_eq!(image::load_from_memory(&src).unwrap().width(), 48);
        let out = strip_metadata(&src).unwrap();
        assert!(!contains(&out, b"HANDOVER-GPS-MARKER"));
        assert!(!contains(&out, b"Exif"));
        let img = image::load_from_memory(&out).unwrap();
        assert_eq!((img.width(), img.height()), (48, 32));
        assert_eq!(image::guess_format(&out).unwrap(), ImageFormat::Jpeg);
    }

    #[test]
    fn png_and_webp_keep_their_format_and_alpha() {
        let img = image::RgbaImage::from_pixel(9, 7, image::Rgba([1, 2, 3, 100]));
        for format in [ImageFormat::Png, ImageFormat::WebP] {
            let mut out = Cursor::new(Vec::new());
            DynamicImage::ImageRgba8(img.clone())
                .write_to(&mut out, format)
                .unwrap();
            let stripped = strip_metadata(&out.into_inner()).unwrap();
            assert_eq!(image::guess_format(&stripped).unwrap(), format);
            let back = image::load_from_memory(&stripped).unwrap();
            assert_eq!((back.width(), back.height()), (9, 7));
            assert!(back.color().has_alpha());
        }
        assert!(strip_metadata(b"\x89PNG\r\n\x1a\ngarbage").is_err());
    }
}
