//! A group's name: a group-context extension sealed under the group's
//! name key (see `crate::name`), so the relay, which reads commits, never
//! reads the name.

use super::Device;
use crate::error::MlsError;
use crate::name::GroupName;
use crate::types::Outgoing;

impl Device {
    /// The group's name, if it has one.
    pub fn name(&mut self, group_id: &[u8]) -> Result<Option<GroupName>, MlsError> {
        let key = self.store.name_key(group_id)?;
        Ok(GroupName::from_extensions(
            &self.group(group_id)?.context().extensions,
            key.as_ref(),
        ))
    }

    /// A commit renaming the group (and removing members whose
    /// certificate no longer passes).
    pub fn rename(&mut self, group_id: &[u8], name: &GroupName) -> Result<Outgoing, MlsError> {
        let key = self.store.name_key(group_id)?.ok_or(MlsError::NoNameKey)?;
        let mut context = self.group(group_id)?.context().extensions.clone();
        context.set(name.extension(&key).ok_or(MlsError::NoNameKey)?);
        self.commit_with(group_id, &[], &[], Some(context))
    }
}
