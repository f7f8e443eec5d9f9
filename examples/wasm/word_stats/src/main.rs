//! `word_stats`: an example toolgate `wasm` tool.
//!
//! The ABI: the arguments arrive as one JSON object on stdin; the output is one JSON
//! value on stdout; exit status 0 means success. On failure the tool writes
//! `{"error": "..."}` and exits with a non-zero status, and toolgate passes the
//! message on as a `tool_error`.
//!
//! Input: `{"text": "...", "top": 3}`. Output: counts of lines, words and characters,
//! and the `top` most frequent words (lower-cased; ties in alphabetical order).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    text: String,
    #[serde(default = "default_top")]
    top: usize,
}

fn default_top() -> usize {
    3
}

#[derive(Serialize)]
struct Output {
    lines: usize,
    words: usize,
    chars: usize,
    top: Vec<WordCount>,
}

#[derive(Serialize)]
struct WordCount {
    word: String,
    count: usize,
}

fn stats(input: &Input) -> Output {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut words = 0;
    for word in input.text.split(|c: char| !c.is_alphanumeric() && c != '\'') {
        let word = word.trim_matches('\'');
        if word.is_empty() {
            continue;
        }
        words += 1;
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    // Stable sort over alphabetical order: ties stay alphabetical.
    ranked.sort_by(|a, b| b.1.cmp(&a.1));
    Output {
        lines: input.text.lines().count(),
        words,
        chars: input.text.chars().count(),
        top: ranked
            .into_iter()
            .take(input.top)
            .map(|(word, count)| WordCount { word, count })
            .collect(),
    }
}

fn run() -> Result<Output, String> {
    let mut raw = String::new();
    std::io::stdin()
        .read_to_string(&mut raw)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    let input: Input = serde_json::from_str(&raw).map_err(|e| format!("bad arguments: {e}"))?;
    Ok(stats(&input))
}

fn main() -> ExitCode {
    let (body, code) = match run() {
        Ok(out) => (serde_json::to_string(&out), ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("word_stats: {e}");
            (serde_json::to_string(&serde_json::json!({ "error": e })), ExitCode::FAILURE)
        }
    };
    let body = body.unwrap_or_else(|_| "{\"error\":\"cannot encode the output\"}".to_owned());
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(body.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    code
}
