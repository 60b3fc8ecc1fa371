//! `escape-detector`: the agent's command line (see the library).

fn main() -> std::process::ExitCode {
    detector_user::run()
}
