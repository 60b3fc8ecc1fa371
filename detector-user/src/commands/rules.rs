//! `escape-detector rules`

use crate::rules::CATALOGUE;

pub fn print() {
    // Columns as wide as their longest entry, so a new rule cannot break the table.
    let id_width = CATALOGUE.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let mitre: Vec<String> = CATALOGUE.iter().map(|r| r.mitre.join(",")).collect();
    let mitre_width = mitre.iter().map(String::len).max().unwrap_or(0);
    println!(
        "{:<id_width$} {:<9} {:<mitre_width$} DESCRIPTION",
        "ID", "SEVERITY", "MITRE"
    );
    for (rule, mitre) in CATALOGUE.iter().zip(&mitre) {
        println!(
            "{:<id_width$} {:<9} {:<mitre_width$} {}",
            rule.id,
            rule.severity.as_str(),
            mitre,
            rule.description
        );
    }
}
