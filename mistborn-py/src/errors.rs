//! The Python exceptions and the one mapping from core errors to them. Every exception carries the
//! stable machine-readable `code` of the core error (`"pool_exhausted"`, `"not_found"`, ...).

use mistborn_core::{Error, ErrorKind};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(
    mistborn,
    MistbornError,
    PyException,
    "Base of every Mistborn error; `code` is a stable machine-readable string."
);
pyo3::create_exception!(
    mistborn,
    InvalidInput,
    MistbornError,
    "Input was malformed or out of range; nothing was changed."
);
pyo3::create_exception!(
    mistborn,
    NotFound,
    MistbornError,
    "No such object, or not visible to the acting user."
);
pyo3::create_exception!(
    mistborn,
    Unauthenticated,
    MistbornError,
    "Missing, wrong or revoked credentials."
);
pyo3::create_exception!(
    mistborn,
    Forbidden,
    MistbornError,
    "The acting user may not do this."
);
pyo3::create_exception!(
    mistborn,
    Conflict,
    MistbornError,
    "The request clashes with existing state (duplicate name, full address pool, ...)."
);
pyo3::create_exception!(
    mistborn,
    RateLimited,
    MistbornError,
    "Too many failed attempts; try again later (the message says when)."
);
pyo3::create_exception!(
    mistborn,
    InternalError,
    MistbornError,
    "Something outside the caller's control failed (database, disk)."
);

/// Converts a core error into its Python exception, with `code` set on the instance.
pub fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    let err = match e.kind() {
        ErrorKind::InvalidInput => InvalidInput::new_err(message),
        ErrorKind::NotFound => NotFound::new_err(message),
        ErrorKind::Unauthenticated => Unauthenticated::new_err(message),
        ErrorKind::Forbidden => Forbidden::new_err(message),
        ErrorKind::Conflict => Conflict::new_err(message),
        ErrorKind::RateLimited => RateLimited::new_err(message),
        ErrorKind::Internal => InternalError::new_err(message),
    };
    Python::attach(|py| {
        // Setting an attribute on a fresh exception instance cannot fail in practice; if it did,
        // the exception itself is still the right one to raise.
        let _ = err.value(py).setattr("code", e.code());
    });
    err
}

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MistbornError", py.get_type::<MistbornError>())?;
    m.add("InvalidInput", py.get_type::<InvalidInput>())?;
    m.add("NotFound", py.get_type::<NotFound>())?;
    m.add("Unauthenticated", py.get_type::<Unauthenticated>())?;
    m.add("Forbidden", py.get_type::<Forbidden>())?;
    m.add("Conflict", py.get_type::<Conflict>())?;
    m.add("RateLimited", py.get_type::<RateLimited>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}
