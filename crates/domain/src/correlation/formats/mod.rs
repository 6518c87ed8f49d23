//! One parser per trace format, and the detector that picks one.
//!
//! Every parser looks for its format's marker anywhere in a line (`File "`,
//! `at `, `.go:`, `:in `), so what is left of a log prefix does not stop it.

pub(crate) mod dotnet;
pub(crate) mod go;
pub(crate) mod java;
pub(crate) mod javascript;
pub(crate) mod python;
pub(crate) mod ruby;
pub(crate) mod rust;

use super::trace::Language;

/// The least score a language needs: one clearly recognised frame line.
const MIN_SCORE: u32 = 3;

/// The language whose markers score most over `lines`, or `Unknown` when
/// none reaches [`MIN_SCORE`]. Ties go to the earlier of
/// [`Language::ALL`].
pub(crate) fn detect(lines: &[&str]) -> Language {
    let mut scores = [0u32; Language::ALL.len()];
    for line in lines {
        score_line(line, &mut scores);
    }
    let mut best = Language::Unknown;
    let mut top = MIN_SCORE - 1;
    for (language, &score) in Language::ALL.iter().zip(scores.iter()) {
        if score > top {
            top = score;
            best = *language;
        }
    }
    best
}

fn score_line(line: &str, scores: &mut [u32; Language::ALL.len()]) {
    let mut add = |language: Language, points: u32| {
        let slot = &mut scores[language as usize];
        *slot = slot.saturating_add(points);
    };
    if python::frame(line).is_some() {
        add(Language::Python, 3);
    }
    if ruby::frame(line).is_some() {
        add(Language::Ruby, 3);
    }
    if line.contains("Traceback (most recent call last)") {
        add(Language::Python, 1);
    }
    if java::frame(line).is_some() {
        add(Language::Java, 3);
    } else if dotnet::frame(line).is_some() {
        add(Language::DotNet, 3);
    } else if javascript::frame(line).is_some() {
        add(Language::JavaScript, 3);
    }
    if line.contains("Caused by: ") || line.contains("Exception in thread \"") {
        add(Language::Java, 1);
    }
    if line.contains("--- End of inner exception stack trace ---") {
        add(Language::DotNet, 2);
    }
    if go::file_line(line).is_some() {
        add(Language::Go, 3);
    }
    if go::goroutine_header(line).is_some() {
        add(Language::Go, 3);
    }
    if line.contains(" panicked at ") {
        add(Language::Rust, 4);
    }
    if rust::location_line(line).is_some() {
        add(Language::Rust, 3);
    }
}
