//! The `scimform` binary: everything happens in the library.

fn main() -> std::process::ExitCode {
    scimform::run(std::env::args_os())
}
