//! Configuration: TOML file -> validated, immutable `Config`.
