//! Unit tests: namespace matching, masquerade and registration rules.
