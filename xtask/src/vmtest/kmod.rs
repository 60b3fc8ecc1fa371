//! The kernel modules the guest needs, with their dependencies, in load order.

use anyhow::{Result, bail};

/// Loaded by /init: `loop` for the host disk the sensitive-mount technique mounts (an ext2 image
/// on a loop device; ext4, which mounts ext2, is built in).
pub const LOADED_AT_BOOT: &[&str] = &["loop"];
/// Only shipped: the module-load technique copies `dummy` into a container and loads it there,
/// and fails if it is loaded already.
pub const LOADED_BY_TESTS: &[&str] = &["dummy"];

/// Paths relative to the modules directory (`kernel/drivers/block/loop.ko`), each after the
/// modules it needs, from `modules.dep` as depmod writes it.
pub fn load_order(modules_dep: &str, wanted: &[&str]) -> Result<Vec<String>> {
    let mut order: Vec<String> = Vec::new();
    for &name in wanted {
        let Some((path, needs)) = modules_dep.lines().find_map(|line| {
            let (path, needs) = line.split_once(':')?;
            (module_name(path) == module_name(name)).then_some((path, needs))
        }) else {
            bail!("modules.dep lists no module {name}");
        };
        // depmod lists every dependency, indirect ones too, the deepest last: modprobe loads
        // them from the end of the list.
        for path in needs.split_whitespace().rev().chain([path]) {
            if !order.iter().any(|loaded| loaded == path) {
                order.push(path.to_owned());
            }
        }
    }
    Ok(order)
}

/// The name the kernel knows a module by: its file name without extensions, `-` read as `_`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split('.').next().unwrap_or(file);
    stem.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULES_DEP: &str = "\
kernel/drivers/block/loop.ko:
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
kernel/fs/binfmt_misc.ko:
";

    #[test]
    fn loads_dependencies_first_and_once() {
        assert_eq!(
            load_order(MODULES_DEP, &["loop", "bridge", "stp"]).unwrap(),
            [
                "kernel/drivers/block/loop.ko",
                "kernel/net/llc/llc.ko",
                "kernel/net/802/stp.ko",
                "kernel/net/bridge/bridge.ko",
            ]
        );
    }

    #[test]
    fn matches_names_as_the_kernel_does() {
        assert_eq!(
            load_order(MODULES_DEP, &["binfmt-misc"]).unwrap(),
            ["kernel/fs/binfmt_misc.ko"]
        );
    }

    #[test]
    fn an_unknown_module_is_an_error() {
        assert!(load_order(MODULES_DEP, &["overlay"]).is_err());
    }
}
