//! The Python extension module `autoenc._internal`, behind both doors of the `autoenc` package:
//!
//! - [`polars`]: the expression plugin functions Python Polars calls, and `train` on a frame;
//! - [`datafusion`]: the SQL functions of `autoenc-datafusion`, handed to Python DataFusion as
//!   datafusion-ffi capsules;
//! - [`model`]: the `Model` class both doors accept.
//!
//! The Python package around it (`python/autoenc/`) registers the plugin functions and the SQL
//! functions, and documents everything users see. Being one library, it holds one copy of the core
//! (and of OpenBLAS) whichever door is imported first.

mod datafusion;
mod errors;
mod model;
mod polars;

use pyo3::prelude::*;

// Series cross the boundary with Python Polars in both directions without copies, so memory allocated
// by Python Polars may be freed here and vice versa: both sides must use Polars' allocator. (Without
// Polars installed it is the system allocator.) Data handed to Python DataFusion crosses through the
// Arrow C data interface and datafusion-ffi, whose structures carry their own release functions.
#[global_allocator]
static ALLOC: pyo3_polars::PolarsAllocator = pyo3_polars::PolarsAllocator::new();

#[pymodule(name = "_internal")]
fn internal(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(polars::training::train, m)?)?;
    m.add_function(wrap_pyfunction!(polars::bench::_time_core_score, m)?)?;
    datafusion::add_to(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
