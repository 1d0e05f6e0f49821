//! The experiment file's tests: reading it and the messages that locate a
//! problem ([`load`]), values and cross-field rules ([`validate`]).

use super::*;
use crate::error::{exit_code, Failure};
use std::path::{Path, PathBuf};

mod load;
mod validate;

const ORIGIN: &str = "exp.toml";

/// Smallest valid file; line 2 is `name`, line 4 is `arch`.
const MINIMAL: &str = "[experiment]\nname = \"t\"\n[model]\narch = \"imex\"\n";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn sets(overrides: &[&str]) -> Vec<String> {
    overrides.iter().map(|s| s.to_string()).collect()
}

/// The message of a config error, after checking it is one (exit code 2).
fn config_error(result: anyhow::Result<Config>) -> String {
    let err = result.expect_err("expected a config error");
    assert_eq!(exit_code(&err), 2, "{err:#}");
    match err.downcast_ref::<Failure>() {
        Some(Failure::Config(msg)) => msg.clone(),
        other => panic!("not a Failure::Config: {other:?}"),
    }
}

fn parse_error(text: &str, overrides: &[&str]) -> String {
    config_error(Config::parse(text, ORIGIN, &sets(overrides)))
}

fn assert_has(msg: &str, parts: &[&str]) {
    for part in parts {
        assert!(msg.contains(part), "message lacks {part:?}:\n{msg}");
    }
}

/// A valid depth experiment on the synthetic set; `[data]` starts on line 7.
const DEPTH: &str = "[experiment]\nname = \"d\"\n[model]\narch = \"imex\"\ntask = \"depth\"\nin_channels = 3\n[data]\ndataset = \"synthetic_rgbd\"\nheight = 24\nwidth = 32\n";
