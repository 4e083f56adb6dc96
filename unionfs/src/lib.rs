//! The union filesystem library.
