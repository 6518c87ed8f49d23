//! The application services over fakes of their ports: one test binary.

mod services;
mod sync_worker;
