//! Tests of the Git facade against real repositories in temporary folders.
