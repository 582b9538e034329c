//! Base images for `strata build`: the local store first (pulled, built or tagged images), then the registry
//! through the `--config` mirrors; a pulled image is named in the store, where the solver finds it.

use strata_frontend::lower::{ImageResolver, ResolvedImage};
use strata_llb::Platform;

use crate::cmd::Globals;
use crate::cmd::pull::pull;
use crate::cmd::store::{Stores, reference};

/// Resolves `FROM` references for the lowering, pulling what the store lacks.
pub struct StoreResolver<'a> {
    pub globals: &'a Globals,
    pub stores: &'a Stores,
}

impl ImageResolver for StoreResolver<'_> {
    fn resolve(&self, name: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        let reference = reference(name).map_err(|e| e.0)?;
        if !self.stores.has_image(&reference).map_err(|e| e.0)? {
            let platform = platform.to_string().parse::<strata_registry::Platform>().map_err(|e| e.to_string())?;
            pull(self.globals, self.stores, &reference, &platform).map_err(|e| e.0)?;
        }
        let image = self.stores.load_image(&reference).map_err(|e| e.0)?;
        Ok(ResolvedImage { reference: reference.to_string(), config: image.config })
    }
}
