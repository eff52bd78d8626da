//! antisteal (work in progress).
