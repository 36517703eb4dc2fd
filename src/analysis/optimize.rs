//! Nelder–Mead for the maximum-likelihood fits without a closed form (Cauchy, logistic, the
//! thesis's alpha distribution of eq. 2.39), through `argmin`'s simplex solver.
use argmin::core::{CostFunction, Error as ArgminError, Executor, State};
use argmin::solver::neldermead::NelderMead;

/// The function to minimize, its non-finite values mapped to +∞.
struct Cost<F>(F);

impl<F: Fn(&[f64]) -> f64> CostFunction for Cost<F> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Vec<f64>) -> Result<f64, ArgminError> {
        let v = (self.0)(p);
        Ok(if v.is_finite() { v } else { f64::INFINITY })
    }
}

/// Minimizes `f` from `start`, with initial simplex steps `scale` per coordinate. Stops after
/// `max_iters` iterations or when the standard deviation of the simplex's values falls below
/// `tol`. Non-finite values of `f` are treated as +∞, so a caller may return `f64::INFINITY`
/// outside the domain. Returns the best point found (`start` should the solver fail).
pub fn nelder_mead(
    f: impl Fn(&[f64]) -> f64,
    start: &[f64],
    scale: &[f64],
    max_iters: usize,
    tol: f64,
) -> Vec<f64> {
    let mut simplex = vec![start.to_vec()];
    for (i, s) in scale.iter().enumerate() {
        let mut p = start.to_vec();
        p[i] += s;
        simplex.push(p);
    }
    let solver = match NelderMead::new(simplex).with_sd_tolerance(tol) {
        Ok(s) => s,
        Err(_) => return start.to_vec(),
    };
    Executor::new(Cost(f), solver)
        .configure(|state| state.max_iters(max_iters as u64))
        .run()
        .ok()
        .and_then(|r| r.state().get_best_param().cloned())
        .unwrap_or_else(|| start.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rosenbrock() {
        let f = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let x = nelder_mead(f, &[-1.2, 1.0], &[0.5, 0.5], 5000, 1e-14);
        assert!(
            (x[0] - 1.0).abs() < 1e-3 && (x[1] - 1.0).abs() < 1e-3,
            "{x:?}"
        );
    }
}
