//! One module per subcommand.

pub mod demo;
pub mod emulate;
pub mod giosg;
pub mod load;
pub mod maintain;
pub mod purge;
pub mod report;
pub mod serve;
pub mod status;
pub mod sync;
