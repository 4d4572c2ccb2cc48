//! Placeholder: the local control plane is being written.
