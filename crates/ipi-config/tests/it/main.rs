//! Integration tests of ipi-config, compiled into one binary.
//!
//! * `catalog`: a small step catalog shaped like ipi's real steps.
//! * `load`: files that load, and what they load into.
//! * `validate`: files that don't, and every diagnostic they give.
//! * `run`: `${env.NAME}`, `for_each`, `cache = false` and `[[tests]]`.
//! * `garbage`: inputs that must give errors, never panics.

mod catalog;
mod garbage;
mod load;
mod run;
mod validate;
