//! `escape-detector check-config --config FILE`

use std::path::Path;

use super::{exit, stdout};
use crate::config;

pub fn check(path: &Path) -> u8 {
    match config::load(path) {
        Ok(_) => stdout::write(&format!("{}: valid\n", path.display()), exit::OK),
        Err(e) => {
            eprintln!("{e}");
            exit::BAD_INPUT
        }
    }
}
