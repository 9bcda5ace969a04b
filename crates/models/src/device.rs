//! Run-time device selection: `cpu` (burn's flex backend), `ndarray`, `wgpu`, `cuda` — each arm compiled only under
//! this crate's cargo feature of the same name (`cpu` under `flex`; `ndarray` is burn's older CPU backend, kept for
//! comparison). The program that uses the crate picks the features: docs/backends.md.

use burn::tensor::Device;

use crate::error::{ModelError, Result};

/// The device names this build understands.
pub fn available_devices() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "flex") {
        v.push("cpu");
    }
    if cfg!(feature = "ndarray") {
        v.push("ndarray");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// Parses `cpu`, `ndarray`, `wgpu`, `cuda` or `cuda:N` into a device.
pub fn parse_device(name: &str) -> Result<Device> {
    let not_built = |feature: &str| {
        ModelError::Device(
            name.to_string(),
            format!("this build has no `{feature}` backend; rebuild with `--features {feature}`"),
        )
    };
    match name {
        "cpu" | "flex" => {
            #[cfg(feature = "flex")]
            {
                Ok(Device::flex())
            }
            #[cfg(not(feature = "flex"))]
            {
                Err(not_built("flex"))
            }
        }
        "ndarray" => {
            #[cfg(feature = "ndarray")]
            {
                #[allow(deprecated)] // kept for the backend comparison only
                Ok(Device::ndarray())
            }
            #[cfg(not(feature = "ndarray"))]
            {
                Err(not_built("ndarray"))
            }
        }
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            {
                Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
            }
            #[cfg(not(feature = "wgpu"))]
            {
                Err(not_built("wgpu"))
            }
        }
        n if n == "cuda" || n.starts_with("cuda:") => {
            let index: usize = match n.strip_prefix("cuda:") {
                Some(i) => i
                    .parse()
                    .map_err(|_| ModelError::Device(name.into(), "expected cuda:N with N a GPU index".into()))?,
                None => 0,
            };
            #[cfg(feature = "cuda")]
            {
                Ok(Device::cuda(index))
            }
            #[cfg(not(feature = "cuda"))]
            {
                let _ = index;
                Err(not_built("cuda"))
            }
        }
        other => Err(ModelError::Device(
            other.to_string(),
            format!("unknown device; expected one of {}", available_devices().join(", ")),
        )),
    }
}
