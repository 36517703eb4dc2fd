//! Running the user's evaluation command on a candidate model (`nnc sweep --eval`).
//!
//! The command is a template run with `sh -c` after replacing every `{model}` with the path
//! of the model to evaluate (shell-quoted when the path holds characters other than letters,
//! digits and `/._-+=,:@%`, so do not quote `{model}` yourself). Candidates are decoded to a
//! temporary directory under the original's file name (so tools that look at the name, such
//! as `tools/metric.py --metric auto`, see the same name); the directory is removed at the end.
//!
//! The metric read from the command's stdout: if stdout, or its last non-empty line, is a JSON
//! object with a numeric `"metric"` field, that field; otherwise the last number on stdout
//! that stands as a token of its own (see [`last_number`]: `top1`, `fp32` or digits inside a
//! path do not count). A command that exits with a
//! non-zero status, or prints no number, fails that setting (the sweep goes on).
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The placeholder replaced with the model path.
pub const PLACEHOLDER: &str = "{model}";

/// A directory removed (with its contents) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p)
            .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
        Ok(TempDir(p))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Quotes `s` for `sh` when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=,:@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The metric printed by an evaluation command (see the module doc).
pub fn parse_metric(stdout: &str) -> Option<f64> {
    let json_metric = |s: &str| -> Option<f64> {
        let v: serde_json::Value = serde_json::from_str(s.trim()).ok()?;
        v.get("metric")?.as_f64()
    };
    if let Some(m) = json_metric(stdout) {
        return Some(m);
    }
    if let Some(last) = stdout.lines().rev().find(|l| !l.trim().is_empty()) {
        if let Some(m) = json_metric(last) {
            return Some(m);
        }
    }
    last_number(stdout)
}

/// The last number token of `s`: tokens are separated by whitespace and ``,;:=()[]{}"'``,
/// lose a trailing `.` or `%`, and count when the whole token is a finite decimal or
/// scientific literal (so `top1`, `fp32` or a path with digits in it do not count).
pub fn last_number(s: &str) -> Option<f64> {
    s.split(|c: char| c.is_whitespace() || ",;:=()[]{}\"'".contains(c))
        .rev()
        .filter_map(|t| {
            let t = t.trim_end_matches(['.', '%']);
            let literal = !t.is_empty()
                && t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
                && t.chars().any(|c| c.is_ascii_digit());
            literal.then(|| t.parse::<f64>().ok()).flatten()
        })
        .find(|v| v.is_finite())
}

/// Runs an evaluation command template on models.
pub struct Evaluator {
    template: String,
    dir: TempDir,
    file_name: std::ffi::OsString,
}

impl Evaluator {
    /// `template` must contain `{model}`; `original` is the model being swept (its file name
    /// is reused for the candidates).
    pub fn new(template: &str, original: &Path) -> Result<Evaluator> {
        if !template.contains(PLACEHOLDER) {
            return Err(Error::Unsupported {
                detail: format!("--eval command {template:?} has no {PLACEHOLDER} placeholder"),
            });
        }
        Ok(Evaluator {
            template: template.to_owned(),
            dir: TempDir::new("nnc-sweep")?,
            file_name: original
                .file_name()
                .map(|n| n.to_owned())
                .unwrap_or_else(|| "model.onnx".into()),
        })
    }

    /// The shell command for `model`.
    pub fn command_for(&self, model: &Path) -> String {
        self.template
            .replace(PLACEHOLDER, &shell_quote(&model.to_string_lossy()))
    }

    /// Runs the command on the model file at `model`.
    pub fn run(&self, model: &Path) -> std::result::Result<f64, String> {
        let cmd = self.command_for(model);
        let out = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .map_err(|e| format!("cannot run sh: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: String = err
                .trim()
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(format!("`{cmd}` exited with {}: {tail}", out.status));
        }
        parse_metric(&stdout).ok_or_else(|| format!("`{cmd}` printed no number"))
    }

    /// Writes the ONNX bytes of a candidate to the temporary directory and evaluates them.
    pub fn run_bytes(&self, onnx: &[u8]) -> std::result::Result<f64, String> {
        let path = self.dir.path().join(&self.file_name);
        std::fs::write(&path, onnx).map_err(|e| format!("writing {}: {e}", path.display()))?;
        let r = self.run(&path);
        let _ = std::fs::remove_file(&path);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_parsing() {
        assert_eq!(parse_metric("accuracy: 0.93\n"), Some(0.93));
        assert_eq!(parse_metric("loading...\n0.5 then 0.75"), Some(0.75));
        assert_eq!(parse_metric("top1 0.95 (fp32)"), Some(0.95));
        assert_eq!(parse_metric("{\"metric\": 0.8, \"other\": 3}"), Some(0.8));
        assert_eq!(
            parse_metric("log 12\n{\"metric\": -1.5e-3}\n"),
            Some(-1.5e-3)
        );
        assert_eq!(parse_metric("x = -2.5E+2;"), Some(-250.0));
        assert_eq!(parse_metric("585532\n"), Some(585532.0));
        assert_eq!(parse_metric("v2 model, .5 done"), Some(0.5));
        assert_eq!(parse_metric("no numbers here"), None);
        assert_eq!(parse_metric("1st 3x"), None);
        assert_eq!(
            parse_metric("acc=0.9. done in /tmp/run-42/m.onnx"),
            Some(0.9)
        );
        assert_eq!(parse_metric("drop 12%"), Some(12.0));
    }

    #[test]
    fn quoting_and_commands() {
        assert_eq!(shell_quote("/tmp/a.onnx"), "/tmp/a.onnx");
        assert_eq!(shell_quote("/tmp/a b's.onnx"), r"'/tmp/a b'\''s.onnx'");
        let e = Evaluator::new("echo 0.25 {model}", Path::new("/x/m.onnx")).unwrap();
        assert_eq!(e.command_for(Path::new("/y/m.onnx")), "echo 0.25 /y/m.onnx");
        assert_eq!(e.run_bytes(b"abc"), Ok(0.25));
        assert!(Evaluator::new("true", Path::new("m.onnx")).is_err());
        let f = Evaluator::new("exit 3 {model}", Path::new("m.onnx")).unwrap();
        assert!(f.run(Path::new("m.onnx")).is_err());
    }
}
