//! The DataFusion door for Python: the SQL functions of `autoenc-datafusion`, bound to a [`models`]
//! registry and handed to Python DataFusion (`pip install datafusion`) as datafusion-ffi capsules
//! ([`exports`]). `autoenc.datafusion.register(ctx, ...)` (python/autoenc/datafusion.py) puts them in a
//! `SessionContext`. The functions are the very `ScalarUDF`s, aggregate and table function the Rust
//! door registers, so the same model file gives the same bits.

mod exports;
mod models;

use pyo3::prelude::*;

pub(crate) fn add_to(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<models::PyModelRegistry>()?;
    m.add_class::<exports::ScalarFunctionExport>()?;
    m.add_class::<exports::AggregateFunctionExport>()?;
    m.add_class::<exports::TableFunctionExport>()?;
    Ok(())
}
