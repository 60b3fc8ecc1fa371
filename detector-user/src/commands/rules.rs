//! `escape-detector rules`

use crate::rules::CATALOGUE;

pub fn print() {
    println!("{:<22} {:<9} {:<18} DESCRIPTION", "ID", "SEVERITY", "MITRE");
    for rule in CATALOGUE {
        println!(
            "{:<22} {:<9} {:<18} {}",
            rule.id,
            rule.severity.as_str(),
            rule.mitre.join(","),
            rule.description
        );
    }
}
