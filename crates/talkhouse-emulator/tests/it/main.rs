//! Integration tests, one module per vendor, compiled into one binary.

mod ada;
mod giosg;
mod gladly;
mod ultimate;
