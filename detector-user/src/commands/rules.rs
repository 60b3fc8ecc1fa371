//! `escape-detector rules`

use std::fmt::Write as _;

use super::{exit, stdout};
use crate::rules::CATALOGUE;

pub fn print() -> u8 {
    stdout::write(&table(), exit::OK)
}

fn table() -> String {
    // Columns as wide as their longest entry, so a new rule cannot break the table.
    let id_width = CATALOGUE.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let mitre: Vec<String> = CATALOGUE.iter().map(|r| r.mitre.join(",")).collect();
    let mitre_width = mitre.iter().map(String::len).max().unwrap_or(0);
    let mut out = format!(
        "{:<id_width$} {:<9} {:<mitre_width$} DESCRIPTION\n",
        "ID", "SEVERITY", "MITRE"
    );
    for (rule, mitre) in CATALOGUE.iter().zip(&mitre) {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{:<id_width$} {:<9} {:<mitre_width$} {}",
            rule.id,
            rule.severity.as_str(),
            mitre,
            rule.description
        );
    }
    out
}
