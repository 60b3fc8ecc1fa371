//! `escape-detector check-config --config FILE`

use std::path::Path;

use super::exit;
use crate::{config, rules};

pub fn check(path: &Path) -> u8 {
    match config::load(path, &rules::rule_ids()) {
        Ok(_) => {
            println!("{}: valid", path.display());
            exit::OK
        }
        Err(e) => {
            eprintln!("{e}");
            exit::BAD_INPUT
        }
    }
}
