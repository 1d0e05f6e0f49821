//! Property tests: no input crashes the config parser or the data loader.
//! `cargo test --release --test fuzz` runs a short pass (proptest's default
//! 256 cases per property); `make fuzz` a long one (PROPTEST_CASES=20000).

use imex_run::config::Config;
use imex_run::data::segmentation::SegmentationSplit;
use imex_run::error::{exit_code, Failure};
use proptest::prelude::*;

const FULL: &str = include_str!("fixtures/config/full.toml");

/// A config error is fine; a panic or any other error kind is not.
fn config_outcome_is_clean(result: anyhow::Result<Config>) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(
            matches!(e.downcast_ref::<Failure>(), Some(Failure::Config(_))),
            "{e:#}"
        );
        prop_assert_eq!(exit_code(&e), 2);
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_text_never_crashes_the_parser(text in "\\PC{0,400}") {
        config_outcome_is_clean(Config::parse(&text, "fuzz.toml", &[]))?;
    }

    #[test]
    fn mutated_valid_config_never_crashes_the_parser(
        at in 0usize..FULL.len(), cut in 0usize..40, insert in "[a-z0-9_.=\\[\\]\",\\n -]{0,20}"
    ) {
        let mut text = FULL.to_string();
        let start = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap();
        let end = (start + cut..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        config_outcome_is_clean(Config::parse(&text, "fuzz.toml", &[]))?;
    }

    #[test]
    fn arbitrary_overrides_never_crash(set in proptest::collection::vec("[a-z_.]{0,24}=?[\\PC]{0,16}", 0..4)) {
        config_outcome_is_clean(Config::parse(FULL, "fuzz.toml", &set))?;
    }

    #[test]
    fn arbitrary_png_bytes_never_crash_the_loader(bytes in proptest::collection::vec(any::<u8>(), 0..600), keep in 0usize..2000) {
        let dir = tempfile::tempdir().unwrap();
        imex_run::data::qtips::write_dataset(
            &dir.path().join("q"),
            &imex_run::data::qtips::QtipsSpec { seed: 1, train: 1, val: 1, size: 16 },
        ).unwrap();
        // Either random bytes or a truncated real PNG.
        let png = dir.path().join("q/train/images/000000.png");
        let real = std::fs::read(&png).unwrap();
        let damaged = if keep < real.len() { real[..keep].to_vec() } else { bytes };
        std::fs::write(&png, damaged).unwrap();
        if let Err(e) = SegmentationSplit::load(&dir.path().join("q"), "train", 4) {
            prop_assert_eq!(exit_code(&e), 3, "{:#}", e);
        }
    }
}
