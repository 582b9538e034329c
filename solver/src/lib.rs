//! The solver runs a build graph: independent vertices in parallel, identical vertices once, each vertex skipped
//! when its content-addressed cache key is already recorded.
