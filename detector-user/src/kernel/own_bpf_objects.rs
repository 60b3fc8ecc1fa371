//! The ids of the BPF objects the detector loaded and attached, as the kernel numbers them.

use aya::{
    Ebpf,
    programs::{ProgramInfo, loaded_links},
};

use crate::state::agent_self::OwnBpfObjects;

/// Read once every program is attached: links exist only then.
pub fn collect(ebpf: &Ebpf) -> OwnBpfObjects {
    let mut own = OwnBpfObjects::default();
    let infos: Vec<ProgramInfo> = ebpf
        .programs()
        .filter_map(|(name, program)| {
            program
                .info()
                .map_err(|e| log::debug!("program {name}: no info ({e}); not loaded"))
                .ok()
        })
        .collect();
    for info in &infos {
        own.programs.insert(info.id());
        own.btf.extend(info.btf_id());
        match info.map_ids() {
            Ok(ids) => own.maps.extend(ids.unwrap_or_default()),
            Err(e) => log::warn!("the maps of program {}: {e}", info.id()),
        }
    }
    for link in loaded_links() {
        match link {
            Ok(link) if own.programs.contains(&link.program_id()) => {
                own.links.insert(link.id());
            }
            Ok(_) => {}
            // A link detached while the list was read.
            Err(e) => log::debug!("a link's info: {e}"),
        }
    }
    log::debug!(
        "own BPF objects: {} programs, {} maps, {} links",
        own.programs.len(),
        own.maps.len(),
        own.links.len()
    );
    own
}
