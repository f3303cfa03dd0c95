//! Migration content: which files to keep (`rules`, `select`), how big they are (`estimate`),
//! putting them into the store (`store`, `capture`) and back onto the new OS (`restore`).

pub mod capture;
pub mod entry;
pub mod estimate;
pub mod restore;
pub mod rules;
pub mod select;
pub mod store;
#[cfg(test)]
pub mod testing;
