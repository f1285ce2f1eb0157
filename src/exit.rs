//! Exit statuses, as Terraform's users expect them.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Success; for `plan --detailed-exitcode`, success with no changes.
    Success,
    /// An error, or an apply in which some operation failed.
    Failure,
    /// `plan --detailed-exitcode` found changes.
    ChangesPresent,
    /// SIGINT or SIGTERM stopped the run: 130 or 143, as a shell reports it.
    Interrupted(crate::signals::Signal),
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(match status {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::ChangesPresent => 2,
            ExitStatus::Interrupted(signal) => signal.exit_code(),
        })
    }
}
