//! The calibration runs: which inputs the model runs on, and how. A sample is one run, or for
//! a model with recurrent state (an input whose next value is one of its outputs) a sequence
//! of steps whose state outputs feed the next step, so that errors that accumulate through the
//! recurrence are measured too. Samples of a stateless model whose first axis is a batch axis
//! run batched.
use std::collections::{HashMap, HashSet};

use super::array::{Array, Values};
use super::engine::{Output, Session, Unrunnable};
use super::inputs::{self, Feeds, InputSpec, Role};
use crate::container::fidelity::InputSource;
use crate::onnx::proto::ModelProto;

/// Steps of a synthetic sample of a model with recurrent state.
pub const STATE_STEPS: usize = 8;

/// Most input elements one batched run takes.
const MAX_BATCH_ELEMENTS: usize = 1 << 24;

pub struct Runs {
    /// Sample → steps → feeds.
    pub samples: Vec<Vec<Feeds>>,
    /// Recurrent state: (input name, index of the output that carries its next value).
    pub state: Vec<(String, usize)>,
    /// Calibration inputs in all (a batched run holds several).
    pub inputs: usize,
    /// Inputs per run (1 unless batched): a batched run's outputs are theirs stacked.
    pub per_run: Vec<usize>,
    pub source: InputSource,
}

impl Runs {
    /// Runs sample `k` (all its steps, feeding state forward) with `extra` feeds added to every
    /// step; returns each output's values over the steps, concatenated.
    pub fn run(
        &self,
        s: &mut Session,
        k: usize,
        extra: &[(&str, &Array)],
    ) -> std::result::Result<Vec<Output>, Unrunnable> {
        let mut carried: HashMap<&str, Array> = HashMap::new();
        let mut all: Vec<Output> = Vec::new();
        for (step, feeds) in self.samples[k].iter().enumerate() {
            let mut f: Vec<(&str, &Array)> = Vec::with_capacity(feeds.len() + extra.len());
            for (name, a) in feeds {
                f.push((name.as_str(), carried.get(name.as_str()).unwrap_or(a)));
            }
            f.extend_from_slice(extra);
            let out = s.run(&f)?;
            let mut next = HashMap::new();
            for (name, o) in &self.state {
                let Some((_, given)) = feeds.iter().find(|(n, _)| n == name) else {
                    continue;
                };
                if let Some(v) = &out[*o].values {
                    if out[*o].shape == given.shape {
                        let dt = given.values.data_type();
                        let wide: Vec<f64> = v.iter().map(|&x| x as f64).collect();
                        next.insert(
                            name.as_str(),
                            Array {
                                shape: given.shape.clone(),
                                values: Values::from_f64(dt, &wide)
                                    .unwrap_or(Values::F32(v.clone())),
                            },
                        );
                    }
                }
            }
            carried = next;
            if step == 0 {
                all = out;
            } else {
                for (acc, o) in all.iter_mut().zip(out) {
                    append(acc, o);
                }
            }
        }
        Ok(all)
    }

    /// Every sample's outputs.
    pub fn run_all(
        &self,
        s: &mut Session,
        extra: &[(&str, &Array)],
    ) -> std::result::Result<Vec<Vec<Output>>, Unrunnable> {
        self.run_first(s, self.samples.len(), extra)
    }

    /// The outputs of the first `n` samples.
    pub fn run_first(
        &self,
        s: &mut Session,
        n: usize,
        extra: &[(&str, &Array)],
    ) -> std::result::Result<Vec<Vec<Output>>, Unrunnable> {
        (0..n.min(self.samples.len()))
            .map(|k| self.run(s, k, extra))
            .collect()
    }
}

/// Appends the values of `o` to `acc` (one output over several steps).
fn append(acc: &mut Output, o: Output) {
    if acc.shape != o.shape {
        // Steps whose output shapes differ are compared as flat values.
        acc.shape = vec![-1];
    }
    match (&mut acc.values, o.values) {
        (Some(a), Some(b)) => a.extend_from_slice(&b),
        _ => acc.values = None,
    }
    acc.raw.extend_from_slice(&o.raw);
}

fn as_feeds(s: &Feeds) -> Vec<(&str, &Array)> {
    s.iter().map(|(n, a)| (n.as_str(), a)).collect()
}

/// The calibration runs: supplied inputs from `dir`, or `count` synthetic samples on the first
/// shape plan the model runs on (see `inputs`).
pub fn calibration_runs(
    full: &ModelProto,
    spec: &[InputSpec],
    reference: &mut Session,
    dir: Option<&std::path::Path>,
    shapes: &HashMap<String, Vec<i64>>,
    count: usize,
) -> std::result::Result<Runs, CalibrationError> {
    if let Some(dir) = dir {
        let sets = inputs::load_dir(dir, spec)?;
        if let Some(s) = sets.first() {
            reference.run(&as_feeds(s)).map_err(|e| {
                Unrunnable(format!("the model does not run on {}: {e}", dir.display()))
            })?;
        }
        let inputs = sets.len();
        return Ok(Runs {
            samples: sets.into_iter().map(|s| vec![s]).collect(),
            state: Vec::new(),
            inputs,
            per_run: vec![1; inputs],
            source: InputSource::Supplied,
        });
    }
    let roles = inputs::roles(full, spec);
    let outputs = reference.outputs.clone();
    let state: Vec<(String, usize)> = spec
        .iter()
        .zip(&roles)
        .filter(|(_, r)| **r == Role::State)
        .filter_map(|(s, _)| {
            let o = inputs::state_output(&s.name, &outputs)?;
            Some((s.name.clone(), outputs.iter().position(|x| x == o)?))
        })
        .collect();
    let steps = if state.is_empty() { 1 } else { STATE_STEPS };
    let plans = inputs::shape_plans(spec, shapes, image_size(full));
    // Each sample takes the first shape plan it runs with (an input compared with constants
    // may need other shapes for each value, as a sample rate does).
    let mut last_error = String::new();
    let mut samples = Vec::with_capacity(count);
    let mut failed = 0;
    for k in 0..count {
        let mut found = None;
        for plan in &plans {
            let seed = 0x6e6e63 ^ (k as u64).wrapping_mul(0x9E37_79B9);
            let sets = inputs::synthesize_from(spec, &roles, plan, steps, Some(k), seed);
            match reference.run(&as_feeds(&sets[0])) {
                Ok(_) => {
                    found = Some(sets);
                    break;
                }
                Err(e) => last_error = e.0,
            }
        }
        match found {
            Some(s) => samples.push(s),
            None => failed += 1,
        }
    }
    if !samples.is_empty() {
        let _ = failed;
        return Ok(Runs {
            inputs: samples.len(),
            per_run: vec![1; samples.len()],
            samples,
            state,
            source: InputSource::Synthetic,
        });
    }
    let tried: Vec<String> = spec
        .iter()
        .zip(&plans[0])
        .map(|(s, p)| format!("{}={:?}", s.name, p))
        .collect();
    Err(Unrunnable(format!(
        "cannot synthesize inputs the model runs on (tried shapes {}; give --input-shape or \
         --calibrate): {last_error}",
        tried.join(" ")
    ))
    .into())
}

/// A failure to set up the runs: the model cannot run, or the supplied inputs are bad.
#[derive(Debug)]
pub enum CalibrationError {
    Unrunnable(Unrunnable),
    Error(crate::Error),
}

impl From<Unrunnable> for CalibrationError {
    fn from(u: Unrunnable) -> Self {
        CalibrationError::Unrunnable(u)
    }
}

impl From<crate::Error> for CalibrationError {
    fn from(e: crate::Error) -> Self {
        CalibrationError::Error(e)
    }
}

/// `imgsz` metadata ("[320, 320]" or "640"), as exporters such as Ultralytics write it.
fn image_size(model: &ModelProto) -> Option<(i64, i64)> {
    let v = model
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some("imgsz"))?
        .value
        .clone()?;
    let nums: Vec<i64> = v
        .trim_matches(|c| c == '[' || c == ']' || c == '(' || c == ')')
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    match nums.as_slice() {
        [s] if *s > 0 => Some((*s, *s)),
        [h, w] if *h > 0 && *w > 0 => Some((*h, *w)),
        _ => None,
    }
}

/// Stacks single-step samples along the first axis into as few runs as fit
/// `MAX_BATCH_ELEMENTS`, when the model gives the same outputs batched as one at a time (its
/// first axis is a batch axis). Returns the batched runs and their outputs, or `None`.
pub fn batched(
    runs: &Runs,
    reference: &mut Session,
    base: &[Vec<Output>],
) -> Option<(Runs, Vec<Vec<Output>>)> {
    if runs.samples.len() < 2 || !runs.state.is_empty() || runs.samples.iter().any(|s| s.len() != 1)
    {
        return None;
    }
    let samples: Vec<&Feeds> = runs.samples.iter().map(|s| &s[0]).collect();
    let per: usize = samples[0]
        .iter()
        .map(|(_, a)| a.elements())
        .sum::<usize>()
        .max(1);
    let group = (MAX_BATCH_ELEMENTS / per).clamp(1, samples.len());
    if group < 2 {
        return None;
    }
    let mut feeds = Vec::new();
    let mut outs = Vec::new();
    for (g, chunk) in samples.chunks(group).enumerate() {
        let mut merged = Feeds::new();
        for (k, (name, _)) in chunk[0].iter().enumerate() {
            let parts: Vec<&Array> = chunk
                .iter()
                .map(|s| s.get(k).map(|x| &x.1))
                .collect::<Option<_>>()?;
            merged.push((name.clone(), Array::concat(&parts)?));
        }
        let out = reference.run(&as_feeds(&merged)).ok()?;
        // Each output must be the samples' outputs stacked, to within float noise.
        let singles = &base[g * group..g * group + chunk.len()];
        for (o, y) in out.iter().enumerate() {
            let v = y.values.as_ref()?;
            let mut joined: Vec<f32> = Vec::with_capacity(v.len());
            for s in singles {
                joined.extend_from_slice(s[o].values.as_ref()?);
            }
            if joined.len() != v.len() {
                return None;
            }
            let (mut se, mut p) = (0.0f64, 0.0f64);
            for (&a, &b) in joined.iter().zip(v) {
                if a.is_finite() && b.is_finite() {
                    se += (a as f64 - b as f64).powi(2);
                    p += (a as f64).powi(2);
                } else if !(a == b || (a.is_nan() && b.is_nan())) {
                    return None;
                }
            }
            if se > 1e-8 * p {
                return None;
            }
        }
        feeds.push(vec![merged]);
        outs.push(out);
    }
    Some((
        Runs {
            per_run: samples.chunks(group).map(<[_]>::len).collect(),
            samples: feeds,
            state: Vec::new(),
            inputs: runs.inputs,
            source: runs.source,
        },
        outs,
    ))
}

/// A session of a model that also returns some tensors of its main graph (the layers' inputs
/// the calibrating encoder measures): each one a graph input, read from the feeds, or added as
/// an output.
pub struct Tap<'m> {
    pub session: Session,
    inputs: HashSet<&'m str>,
}

impl<'m> Tap<'m> {
    /// A session of `reference` (the model as read) that returns `names` too.
    pub fn new(reference: &'m ModelProto, names: &[&str], threads: usize) -> Result<Tap<'m>, Unrunnable> {
        let g = reference.graph.as_ref();
        let inputs: HashSet<&str> = g
            .map(|g| g.input.iter().filter_map(|v| v.name.as_deref()).collect())
            .unwrap_or_default();
        let outputs: Vec<&str> = g
            .map(|g| g.output.iter().filter_map(|v| v.name.as_deref()).collect())
            .unwrap_or_default();
        let mut added: Vec<String> = Vec::new();
        for &a in names {
            if !inputs.contains(a) && !outputs.contains(&a) && !added.iter().any(|x| x == a) {
                added.push(a.to_owned());
            }
        }
        let mut model = reference.clone();
        crate::onnx::probe::add_outputs(&mut model, &added);
        use prost::Message;
        let session = Session::from_bytes(&model.encode_to_vec(), threads)?;
        Ok(Tap { session, inputs })
    }

    /// Tensor `name` in sample `k` of `runs`, whose run gave `out`: its shape and its values
    /// (a graph input's feeds over the sample's steps, concatenated; an output's values as the
    /// run returned them, not copied); `None` for a tensor the run does not return as floats.
    pub fn values<'a>(
        &self,
        runs: &Runs,
        k: usize,
        out: &'a [Output],
        name: &str,
    ) -> Option<(Vec<i64>, std::borrow::Cow<'a, [f32]>)> {
        if self.inputs.contains(name) {
            let mut shape = Vec::new();
            let mut values = Vec::new();
            for step in runs.samples.get(k)? {
                if let Some((_, a)) = step.iter().find(|(n, _)| n == name) {
                    shape = a.shape.clone();
                    let v = a.values.to_f64().unwrap_or_default();
                    values.extend(v.iter().map(|&x| x as f32));
                }
            }
            return Some((shape, values.into()));
        }
        let o = self.session.outputs.iter().position(|n| n == name)?;
        let v = out.get(o)?.values.as_ref()?;
        Some((out[o].shape.clone(), v.as_slice().into()))
    }
}
