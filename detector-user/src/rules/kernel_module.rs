//! kernel-module-load: a container process loaded a kernel module, or made the kernel
//! request one. Kernel code runs outside every namespace: a module is the host.

use detector_common::{ModuleEvent, module_source};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject, text};

pub const KERNEL_MODULE_LOAD: RuleInfo = RuleInfo {
    id: "kernel-module-load",
    severity: Severity::Critical,
    mitre: &["T1611", "T1547.006"],
    description: "loads a kernel module or makes the kernel request one",
};

pub fn module_load(e: &ModuleEvent, subject: &Subject) -> Option<Finding> {
    let name = text(&e.name);
    let how = module_source::name(e.source);
    let what = match (e.source, name.is_empty()) {
        (module_source::REQUEST, _) => format!("made the kernel request module {name}"),
        (_, true) => "loaded a kernel module image".to_string(),
        (_, false) => format!("loaded kernel module {name}"),
    };
    Some(Finding {
        rule: &KERNEL_MODULE_LOAD,
        message: format!("{} {what}", subject.describe()),
        details: json!({ "syscall": how, "module": name }),
        repeat: Repeat::EveryAct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::test_support::{buf, header, subject},
        state::filesystems::Filesystems,
    };
    use detector_common::EventKind;

    fn event(source: u32, name: &str) -> ModuleEvent {
        ModuleEvent {
            header: header(EventKind::Module),
            source,
            denied: 0,
            name: buf(name),
        }
    }

    #[test]
    fn names_how_the_module_came_in() {
        let fs = Filesystems::default();
        let s = subject(&fs);
        let file = module_load(&event(module_source::FILE, "dummy.ko"), &s).unwrap();
        assert_eq!(file.details["syscall"], "finit_module");
        assert!(file.message.ends_with("loaded kernel module dummy.ko"));
        let request = module_load(&event(module_source::REQUEST, "net-pf-38"), &s).unwrap();
        assert!(
            request
                .message
                .ends_with("made the kernel request module net-pf-38")
        );
        let image = module_load(&event(module_source::IMAGE, ""), &s).unwrap();
        assert_eq!(image.details["module"], "");
    }
}
