//! placeholder, replaced by the proto work
