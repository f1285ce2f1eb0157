//! The `scimform` binary: everything happens in the library.

/// mimalloc rather than the system's allocator: a run at scale allocates and frees millions of
/// small values (records, paths, JSON); with glibc's, a scheduled run of 100,000 users spent a
/// third of its time in malloc and free, and took twice as long (`benches/scale.rs`, which uses
/// this allocator too; docs/state.md has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    scimform::run(std::env::args_os())
}
