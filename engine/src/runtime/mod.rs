//! placeholder, replaced by the runtime work
