//! `runtime-socket-access`: a container process connects to a container runtime's API socket,
//! here reached through /proc/PID/root of a host process, a name no path rule would watch.

use std::{
    net::TcpListener,
    os::{
        linux::net::SocketAddrExt,
        unix::net::{SocketAddr, UnixListener},
    },
    path::Path,
};

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, RunningContainer, alert_matches, exclusive,
    ids, rootfs::ACT, scenario, technique, temp_dir::TempDir,
};

/// Binds a listening socket at `dir/name`.
fn listen(dir: &Path, name: &str) -> anyhow::Result<UnixListener> {
    Ok(UnixListener::bind(dir.join(name))?)
}

#[test]
fn an_exec_session_connecting_to_a_watched_socket_under_another_name_is_reported()
-> anyhow::Result<()> {
    connecting_to_a_watched_socket_under_another_name_is_reported(By::ExecSession)
}

#[test]
fn the_workload_connecting_to_a_watched_socket_under_another_name_is_reported() -> anyhow::Result<()>
{
    connecting_to_a_watched_socket_under_another_name_is_reported(By::Workload)
}

fn connecting_to_a_watched_socket_under_another_name_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let dir = TempDir::new("runtime-socket")?;
    // The watched socket has a name no path rule knows; the unwatched one looks like docker's.
    let watched_name = format!("api-{}.sock", ids::random_hex(4));
    let _api = listen(dir.path(), &watched_name)?;
    let _other = listen(dir.path(), "docker.sock")?;
    let watched = dir.path().join(&watched_name);
    let detector = Detector::start_with_config(
        &format!(
            "extra_runtime_sockets = [{:?}]\n",
            watched.display().to_string()
        ),
        &[],
    )?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    // The test process's root is the host's: the container sees the host's files through it.
    let via_proc = |name: &str| {
        format!(
            "/proc/{}/root{}/{name}",
            std::process::id(),
            dir.path().display()
        )
    };
    technique::connect_socket(&container, by, &via_proc("docker.sock"))?;
    let alert = scenario::expect_alert(
        &detector,
        "runtime-socket-access",
        &container,
        Some("escape-act"),
        by,
        || technique::connect_socket(&container, by, &via_proc(&watched_name)),
    )?;
    assert_eq!(
        alert["details"]["socket"],
        watched.display().to_string(),
        "{alert:#}"
    );
    // Each connect is its own escape-act process: a second alert would be the unwatched one's.
    let reported = detector
        .alerts()
        .into_iter()
        .filter(|a| alert_matches(a, "runtime-socket-access", container.id()))
        .count();
    assert_eq!(
        reported, 1,
        "a connection to an unwatched socket was reported"
    );
    Ok(())
}

#[test]
fn an_exec_session_connecting_to_a_shims_abstract_socket_is_reported() -> anyhow::Result<()> {
    connecting_to_a_shims_abstract_socket_is_reported(By::ExecSession)
}

#[test]
fn the_workload_connecting_to_a_shims_abstract_socket_is_reported() -> anyhow::Result<()> {
    connecting_to_a_shims_abstract_socket_is_reported(By::Workload)
}

/// containerd's shims before 1.4 listened on abstract sockets, which any process of the host's
/// network namespace could reach (CVE-2020-15257): a host-network container took over the
/// shim. There is no file to know the socket by, only the name the host's listener chose.
fn connecting_to_a_shims_abstract_socket_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let name = format!("/containerd-shim/escdet-{}/shim.sock", ids::random_hex(4));
    let _shim = UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name)?)?;
    let other = format!("/escdet-{}/app.sock", ids::random_hex(4));
    let _other = UnixListener::bind_addr(&SocketAddr::from_abstract_name(&other)?)?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostNet, CgroupLayout::Docker)?;
    // An application's own abstract socket is no runtime's.
    technique::connect_socket(&container, by, &format!("@{other}"))?;
    let alert = scenario::expect_alert(
        &detector,
        "runtime-socket-access",
        &container,
        Some("escape-act"),
        by,
        || technique::connect_socket(&container, by, &format!("@{name}")),
    )?;
    assert_eq!(alert["details"]["socket"], format!("@{name}"), "{alert:#}");
    detector.assert_no_alert(
        |a| a["details"]["socket"] == format!("@{other}"),
        scenario::SETTLE,
    );
    Ok(())
}

#[test]
fn an_exec_session_connecting_to_the_nodes_docker_tcp_api_is_reported() -> anyhow::Result<()> {
    connecting_to_the_nodes_tcp_api_is_reported(By::ExecSession, 2375, "docker", "")
}

#[test]
fn the_workload_connecting_to_the_nodes_kubelet_tcp_api_is_reported() -> anyhow::Result<()> {
    connecting_to_the_nodes_tcp_api_is_reported(By::Workload, 10250, "kubelet", "")
}

/// A node whose runtime listens elsewhere (the kernel filter takes the configured ports).
#[test]
fn a_port_listed_in_runtime_api_ports_is_watched() -> anyhow::Result<()> {
    connecting_to_the_nodes_tcp_api_is_reported(
        By::Workload,
        18443,
        "runtime",
        "runtime_api_ports = [10250, 18443]\n",
    )
}

/// A host-network container (a `hostNetwork` pod) reaches the node's kubelet or a docker daemon
/// listening on TCP at the host's loopback. A container with a network of its own that
/// connects to the same port of its own loopback reaches only itself: silent. `config` is the
/// detector's configuration file.
fn connecting_to_the_nodes_tcp_api_is_reported(
    by: By,
    port: u16,
    service: &str,
    config: &str,
) -> anyhow::Result<()> {
    let _machine = exclusive();
    let _api = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| anyhow::anyhow!("the test listens on 127.0.0.1:{port} as the API: {e}"))?;
    let detector = Detector::start_with_config(config, &[])?;
    let own_network = Container::start(Profile::Default, CgroupLayout::Docker)?;
    // Nothing listens there: refused, yet the connection was attempted (SYN_SENT).
    own_network.run(by, &format!("{ACT} connect tcp://127.0.0.1:{port} || true"))?;
    let container = Container::start(Profile::HostNet, CgroupLayout::Docker)?;
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let alert = scenario::expect_alert(
        &detector,
        "runtime-socket-access",
        &container,
        Some("escape-act"),
        by,
        || technique::connect_socket(&container, by, &endpoint),
    )?;
    assert_eq!(alert["details"]["socket"], endpoint, "{alert:#}");
    assert_eq!(alert["details"]["service"], service, "{alert:#}");
    detector.assert_no_alert(
        |a| alert_matches(a, "runtime-socket-access", own_network.id()),
        scenario::SETTLE,
    );
    Ok(())
}
