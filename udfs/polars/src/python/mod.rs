//! The Python extension module `polars_autoenc._internal`: the expression plugin functions
//! ([`plugin`]), the `Model` class ([`model`]) and `train` ([`training`]). The Python package around it
//! (`python/polars_autoenc/`) registers the plugin functions, casts nothing the plugin cannot check
//! itself, and documents everything users see.

mod bench;
mod errors;
mod model;
mod model_cache;
mod plugin;
mod training;

use pyo3::prelude::*;

// Series cross the boundary in both directions without copies, so memory allocated by Python Polars
// may be freed here and vice versa: both sides must use Polars' allocator.
#[global_allocator]
static ALLOC: pyo3_polars::PolarsAllocator = pyo3_polars::PolarsAllocator::new();

#[pymodule(name = "_internal")]
fn internal(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(training::train, m)?)?;
    m.add_function(wrap_pyfunction!(bench::_time_core_score, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
