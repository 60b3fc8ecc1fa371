//! The evasion variants of a file write: every road from a container's workload to one file,
//! done for real, each of which the detector must report as the same act. The roads are the
//! name the file is reached by (its own, a second mount of its filesystem, a symlink, a hard
//! link), the system calls that open and write it, who holds the descriptor when it writes, and
//! what the writing program looks like (a renamed copy, a thread whose leader has exited).

use std::fmt;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::{
    alert,
    container::{By, RunningContainer},
    detector::Detector,
    rootfs::ACT,
    scenario,
};

/// One file a rule watches, as a container reaches it.
pub struct Target<'a> {
    pub rule: &'static str,
    /// The file as the container names it.
    pub path: String,
    /// `mount` arguments that mount the file's filesystem a second time at [`SECOND_MOUNT`],
    /// and the file's path there.
    pub second_mount: (String, String),
    /// Whether the kernel lets the file be hard-linked: procfs, sysfs and cgroupfs files cannot
    /// be, which closes that road.
    pub hard_link: bool,
    /// Whether the file checks the writer's credentials at each write (sysctls, release_agent):
    /// a descriptor kept across a drop of root then writes nothing, though its open is
    /// reported.
    pub checks_writer: bool,
    /// The value the n-th variant writes: each a different one, so that the file shows which
    /// write happened and the alert's arguments tell the variants apart.
    pub value: Box<dyn Fn(usize) -> String + 'a>,
    /// The file's first line now, as the host (or the container) reads it.
    pub read: Box<dyn Fn() -> anyhow::Result<String> + 'a>,
}

/// Where a variant mounts the file's filesystem a second time: a path no rule matching
/// `/proc/...` or `/sys/...` strings would know.
pub const SECOND_MOUNT: &str = "/mnt/odd";

/// The name a variant gives its copy of `escape-act`: a kernel thread's, which a rule keyed on
/// program names would let pass.
const RENAMED: &str = "/tmp/kworker";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The file's own name.
    Direct,
    /// Through a second mount of its filesystem at [`SECOND_MOUNT`].
    SecondMount,
    /// Through a symlink in the container's /tmp.
    Symlink,
    /// Through a hard link beside it.
    HardLink,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// `escape-act` under its own name.
    Act,
    /// A copy of `escape-act` named like a kernel thread.
    Renamed,
    /// `escape-act`'s second thread, after the leader thread ended with exit(2).
    OrphanThread,
}

impl Actor {
    /// The program's name, as alerts give it.
    fn name(self) -> &'static str {
        match self {
            Actor::Renamed => "kworker",
            Actor::Act | Actor::OrphanThread => "escape-act",
        }
    }

    /// The shell words that run `escape-act` as this actor.
    fn command(self) -> String {
        match self {
            Actor::Act => ACT.to_owned(),
            Actor::Renamed => format!("cp {ACT} {RENAMED} && {RENAMED}"),
            Actor::OrphanThread => format!("{ACT} orphan-thread"),
        }
    }
}

/// One road: the name, the `write-via` calls and handoff (see `escape-act`), the program.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub route: Route,
    pub open: &'static str,
    pub write: &'static str,
    pub handoff: &'static str,
    pub actor: Actor,
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} route, {} then {}, written by the {}, {:?}",
            self.route, self.open, self.write, self.handoff, self.actor
        )
    }
}

const fn variant(route: Route, open: &'static str, write: &'static str) -> Variant {
    Variant {
        route,
        open,
        write,
        handoff: "opener",
        actor: Actor::Act,
    }
}

const fn handed(handoff: &'static str) -> Variant {
    Variant {
        handoff,
        ..variant(Route::Direct, "openat", "write")
    }
}

const fn by(actor: Actor) -> Variant {
    Variant {
        actor,
        ..variant(Route::Direct, "openat", "write")
    }
}

/// Every road, each changing one thing from `openat` then `write` by the file's own name.
pub const VARIANTS: &[Variant] = &[
    variant(Route::Direct, "openat", "write"),
    variant(Route::Direct, "openat2", "write"),
    variant(Route::Direct, "open", "write"),
    variant(Route::Direct, "creat", "write"),
    variant(Route::Direct, "openat", "pwrite"),
    variant(Route::Direct, "openat", "writev"),
    variant(Route::SecondMount, "openat", "write"),
    variant(Route::Symlink, "openat", "write"),
    variant(Route::HardLink, "openat", "write"),
    handed("setuid"),
    handed("socket"),
    by(Actor::Renamed),
    by(Actor::OrphanThread),
];

/// What became of one variant.
enum Outcome {
    /// The file holds the variant's value.
    Written,
    /// The kernel refused the write after the open; the open is still the act.
    WriteRefused,
}

/// Does every variant against `target` from `container`'s workload and checks that each was
/// reported as `target.rule` about `container`, by the variant's process. Runs them all, then
/// fails listing every variant that was not.
pub fn expect_every_variant_reported(
    detector: &Detector,
    container: &dyn RunningContainer,
    target: &Target,
) -> anyhow::Result<()> {
    let mut missed = Vec::new();
    for (n, variant) in VARIANTS.iter().enumerate() {
        match expect_variant_reported(detector, container, target, n, *variant) {
            Ok(note) => eprintln!("{}: {variant}: {note}", target.rule),
            Err(e) => missed.push(format!("{variant}: {e:#}")),
        }
    }
    ensure!(
        missed.is_empty(),
        "{} of {} variants of {} failed:\n{}",
        missed.len(),
        VARIANTS.len(),
        target.rule,
        missed.join("\n\n")
    );
    Ok(())
}

fn expect_variant_reported(
    detector: &Detector,
    container: &dyn RunningContainer,
    target: &Target,
    n: usize,
    variant: Variant,
) -> anyhow::Result<&'static str> {
    if variant.route == Route::HardLink && !target.hard_link {
        return expect_hard_link_refused(container, target, n);
    }
    let value = (target.value)(n);
    let mut outcome = Outcome::Written;
    let program = variant.actor.name();
    let which = |a: &Value| {
        alert::process_named(a, program)
            && a["process"]["args"]
                .as_array()
                .is_some_and(|args| args.iter().any(|arg| arg == value.as_str()))
    };
    let alert = scenario::expect_alert_where(
        detector,
        target.rule,
        container,
        By::Workload,
        &format!(" raised by {program} writing {value:?}"),
        which,
        || {
            outcome = act(container, target, n, variant, &value)?;
            Ok(())
        },
    )?;
    if variant.actor == Actor::OrphanThread {
        ensure!(
            alert["process"]["tid"] != alert["process"]["pid"],
            "the alert is not the surviving thread's: {alert:#}"
        );
    }
    Ok(match outcome {
        Outcome::WriteRefused => "reported; the kernel refused the write after the open",
        Outcome::Written => "reported",
    })
}

/// A hard link beside the file: a link cannot cross mounts.
fn hard_link_path(target: &Target, n: usize) -> String {
    let dir = target.path.rsplit_once('/').map_or("", |(dir, _)| dir);
    format!("{dir}/escdet-hardlink-{n}")
}

/// Checks that the kernel refuses a hard link to `target`.
fn expect_hard_link_refused(
    container: &dyn RunningContainer,
    target: &Target,
    n: usize,
) -> anyhow::Result<&'static str> {
    let ln = format!("ln {} {}", target.path, hard_link_path(target, n));
    ensure!(
        container.run(By::Workload, &ln).is_err(),
        "the kernel let `{ln}` make a hard link to a kernel file"
    );
    Ok("the kernel refuses the hard link: no road")
}

/// Does the variant's write in the container and checks its effect.
fn act(
    container: &dyn RunningContainer,
    target: &Target,
    n: usize,
    variant: Variant,
    value: &str,
) -> anyhow::Result<Outcome> {
    let (prelude, path, epilogue) = match variant.route {
        Route::Direct => (String::new(), target.path.clone(), String::new()),
        Route::SecondMount => (
            format!(
                "mkdir -p {SECOND_MOUNT} && mount {} {SECOND_MOUNT} && ",
                target.second_mount.0
            ),
            target.second_mount.1.clone(),
            format!("; status=$?; umount {SECOND_MOUNT}; exit $status"),
        ),
        Route::Symlink => {
            let link = format!("/tmp/escdet-symlink-{n}");
            (
                format!("ln -sf {} {link} && ", target.path),
                link,
                String::new(),
            )
        }
        Route::HardLink => {
            let link = hard_link_path(target, n);
            (
                format!("ln {} {link} && ", target.path),
                link,
                String::new(),
            )
        }
    };
    let program = variant.actor.command();
    let script = format!(
        "{prelude}{program} write-via {} {} {} {path} '{value}'{epilogue}",
        variant.open, variant.write, variant.handoff
    );
    let ran = container.run(By::Workload, &script);
    if variant.handoff == "setuid" && target.checks_writer {
        let refused = ran
            .err()
            .context("the write after the drop of root succeeded")?;
        ensure!(
            format!("{refused:#}").contains("escape-act: write("),
            "not the write failed: {refused:#}"
        );
        return Ok(Outcome::WriteRefused);
    }
    ran?;
    let now = (target.read)()?;
    if now != value {
        bail!("after `{script}` the file reads {now:?}, not {value:?}");
    }
    Ok(Outcome::Written)
}

/// The first line of `text`: a file read back holds the written value on its first line.
pub fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// An act of any rule, as `escape-act` words, for [`expect_reported_by_every_actor`].
pub struct Act {
    pub rule: &'static str,
    /// `escape-act`'s arguments.
    pub words: String,
    /// Shell commands that prepare the act (ending in `&&`) and undo it after (ending in `;`).
    pub around: (String, String),
    /// The program the alert names when it is not the acting one: an act that ends in exec
    /// may be reported at the exec.
    pub reported_as: Option<&'static str>,
    /// The kernel may refuse the act (the attempt is what is reported): its failure is
    /// accepted.
    pub may_be_refused: bool,
    /// Why the kernel refuses the act to a thread whose leader has exited, when it does: that
    /// road is closed, and the test checks the refusal instead.
    pub closed_to_orphan_threads: Option<&'static str>,
    /// The alert names the acting process but not its thread (its `tid` is the pid).
    pub names_no_thread: bool,
}

impl Act {
    pub fn new(rule: &'static str, words: impl Into<String>) -> Act {
        Act {
            rule,
            words: words.into(),
            around: (String::new(), String::new()),
            reported_as: None,
            may_be_refused: false,
            closed_to_orphan_threads: None,
            names_no_thread: false,
        }
    }

    pub fn around(self, before: impl Into<String>, after: impl Into<String>) -> Act {
        Act {
            around: (before.into(), after.into()),
            ..self
        }
    }

    pub fn may_be_refused(self) -> Act {
        Act {
            may_be_refused: true,
            ..self
        }
    }

    pub fn closed_to_orphan_threads(self, why: &'static str) -> Act {
        Act {
            closed_to_orphan_threads: Some(why),
            ..self
        }
    }

    pub fn names_no_thread(self) -> Act {
        Act {
            names_no_thread: true,
            ..self
        }
    }

    pub fn reported_as(self, program: &'static str) -> Act {
        Act {
            reported_as: Some(program),
            ..self
        }
    }
}

/// Every [`Actor`] does `act` in `container`'s workload; each must be reported as `act.rule`
/// about `container` in an alert of its own, naming its program (and for the orphan thread,
/// a thread other than the leader). Runs them all, then fails listing every one that was not.
pub fn expect_reported_by_every_actor(
    detector: &Detector,
    container: &dyn RunningContainer,
    act: &Act,
) -> anyhow::Result<()> {
    let mut missed = Vec::new();
    for actor in [Actor::Act, Actor::Renamed, Actor::OrphanThread] {
        match expect_reported_by(detector, container, act, actor) {
            Ok(note) => eprintln!("{} by {actor:?}: `{}` {note}", act.rule, act.words),
            Err(e) => missed.push(format!("{actor:?}: {e:#}")),
        }
    }
    ensure!(
        missed.is_empty(),
        "`{}` was not reported as {} when done by:\n{}",
        act.words,
        act.rule,
        missed.join("\n\n")
    );
    Ok(())
}

fn expect_reported_by(
    detector: &Detector,
    container: &dyn RunningContainer,
    act: &Act,
    actor: Actor,
) -> anyhow::Result<&'static str> {
    let (before, after) = &act.around;
    let script = format!(
        "{before}{} {}; status=$?; {after} exit $status",
        actor.command(),
        act.words
    );
    if let (Actor::OrphanThread, Some(why)) = (actor, act.closed_to_orphan_threads) {
        ensure!(
            container.run(By::Workload, &script).is_err(),
            "`{script}` worked, though {why}"
        );
        return Ok(why);
    }
    let seen = detector.alerts();
    let program = act.reported_as.unwrap_or(actor.name());
    let alert = scenario::expect_alert_where(
        detector,
        act.rule,
        container,
        By::Workload,
        &format!(" raised anew by {program}"),
        |a| !seen.contains(a) && alert::process_named(a, program),
        || match container.run(By::Workload, &script) {
            Err(refused) if act.may_be_refused => {
                eprintln!("{} by {actor:?}: the kernel refused: {refused:#}", act.rule);
                Ok(())
            }
            ran => ran.map(drop),
        },
    )?;
    if actor == Actor::OrphanThread && act.reported_as.is_none() && !act.names_no_thread {
        ensure!(
            alert["process"]["tid"] != alert["process"]["pid"],
            "the alert is not the surviving thread's: {alert:#}"
        );
    }
    Ok("reported")
}
