//! Dockerfile parsing: instructions, directives, variable substitution and the dump notation.
