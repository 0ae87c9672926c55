//! One Python object per SQL function, each exposing the dunder method Python DataFusion looks for
//! (`__datafusion_scalar_udf__`, `__datafusion_aggregate_udf__`, `__datafusion_table_function__`) and
//! returning the function as a datafusion-ffi structure in a named `PyCapsule`. Python DataFusion
//! wraps the structure in its own `ForeignScalarUDF` (etc.), which calls back into this library for
//! planning and execution; errors come back as DataFusion errors carrying autoenc's message.

use std::ffi::CStr;
use std::sync::{Arc, OnceLock};

use datafusion::catalog::TableFunctionImpl;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udtf::FFI_TableFunction;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use tokio::runtime::{Handle, Runtime};

/// A scalar function (`ae_score`, `ae_encode`, ...).
#[pyclass(name = "_ScalarFunction", module = "autoenc._internal", frozen)]
pub(crate) struct ScalarFunctionExport {
    udf: Arc<ScalarUDF>,
}

impl ScalarFunctionExport {
    pub(crate) fn new(udf: Arc<ScalarUDF>) -> Self {
        ScalarFunctionExport { udf }
    }
}

#[pymethods]
impl ScalarFunctionExport {
    #[getter]
    fn name(&self) -> &str {
        self.udf.name()
    }

    fn __datafusion_scalar_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        PyCapsule::new_with_value(py, FFI_ScalarUDF::from(Arc::clone(&self.udf)), c"datafusion_scalar_udf")
    }
}

/// The training aggregate, `ae_train`.
#[pyclass(name = "_AggregateFunction", module = "autoenc._internal", frozen)]
pub(crate) struct AggregateFunctionExport {
    udaf: Arc<AggregateUDF>,
}

impl AggregateFunctionExport {
    pub(crate) fn new(udaf: Arc<AggregateUDF>) -> Self {
        AggregateFunctionExport { udaf }
    }
}

#[pymethods]
impl AggregateFunctionExport {
    #[getter]
    fn name(&self) -> &str {
        self.udaf.name()
    }

    fn __datafusion_aggregate_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        PyCapsule::new_with_value(py, FFI_AggregateUDF::from(Arc::clone(&self.udaf)), c"datafusion_aggregate_udf")
    }
}

/// A table function (`ae_generate`).
#[pyclass(name = "_TableFunction", module = "autoenc._internal", frozen)]
pub(crate) struct TableFunctionExport {
    name: &'static str,
    function: Arc<dyn TableFunctionImpl>,
}

impl TableFunctionExport {
    pub(crate) fn new(name: &'static str, function: Arc<dyn TableFunctionImpl>) -> Self {
        TableFunctionExport { name, function }
    }
}

#[pymethods]
impl TableFunctionExport {
    #[getter]
    fn name(&self) -> &str {
        self.name
    }

    /// `session` is the `SessionContext` the function is registered in: the table it returns travels
    /// back with that session's logical extension codec.
    fn __datafusion_table_function__<'py>(
        &self,
        py: Python<'py>,
        session: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let codec = logical_codec_of(session)?;
        let runtime =
            runtime().map_err(|e| PyRuntimeError::new_err(format!("{}: cannot start a runtime: {e}", self.name)))?;
        let function = FFI_TableFunction::new_with_ffi_codec(Arc::clone(&self.function), Some(runtime), codec);
        PyCapsule::new_with_value(py, function, c"datafusion_table_function")
    }
}

/// The tokio runtime this library's tables execute on. Python DataFusion polls their streams from its
/// own runtime, which belongs to its own copy of tokio and is invisible here; datafusion-ffi enters this
/// one around every call into a plan or stream it was given with. Started on first use, kept for the
/// process's life; one worker is enough, as the work itself runs on tokio's blocking threads.
fn runtime() -> std::io::Result<Handle> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime.handle().clone());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("autoenc-datafusion")
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| runtime).handle().clone())
}

const LOGICAL_CODEC: &CStr = c"datafusion_logical_extension_codec";

/// The logical extension codec of a Python DataFusion `SessionContext` (from its
/// `__datafusion_logical_extension_codec__` capsule), or of a bare capsule.
fn logical_codec_of(session: &Bound<'_, PyAny>) -> PyResult<FFI_LogicalExtensionCodec> {
    let capsule = if session.hasattr("__datafusion_logical_extension_codec__")? {
        session.call_method0("__datafusion_logical_extension_codec__")?
    } else {
        session.clone()
    };
    let capsule = capsule.cast::<PyCapsule>()?;
    let pointer = capsule.pointer_checked(Some(LOGICAL_CODEC))?.cast::<FFI_LogicalExtensionCodec>();
    // SAFETY: `pointer_checked` verified the capsule's name, and a capsule of that name holds an
    // `FFI_LogicalExtensionCodec` (datafusion-ffi's contract, which Python DataFusion follows); the
    // capsule keeps it alive while `capsule` is borrowed here, and it is cloned before returning.
    let codec = unsafe { pointer.as_ref() };
    Ok(codec.clone())
}
