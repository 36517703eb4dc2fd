//! Progress bars on stderr for the command-line tool's long commands (decode, verify, sweep):
//! drawn with `indicatif` only when stderr is a terminal and the command was not given
//! `--quiet`.
use std::io::IsTerminal;

/// A bar of `len` steps labelled `what`, or `None` when `on` is false or stderr is not a
/// terminal. `bytes` shows the counts as sizes.
pub fn bar(on: bool, len: u64, what: &str, bytes: bool) -> Option<indicatif::ProgressBar> {
    if !on || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(len);
    let template = if bytes {
        "{msg}: {bar:30} {bytes}/{total_bytes} ({elapsed}, {eta} left)"
    } else {
        "{msg}: {bar:30} {pos}/{len} ({elapsed}, {eta} left)"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        b.set_style(style);
    }
    b.set_message(what.to_owned());
    Some(b)
}
