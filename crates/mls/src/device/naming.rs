//! A group's name: a group-context extension, so it travels only inside
//! MLS's encryption (commits, Welcomes), never where the relay reads it.

use super::Device;
use crate::error::MlsError;
use crate::name::GroupName;
use crate::types::Outgoing;

impl Device {
    /// The group's name, if it has one.
    pub fn name(&mut self, group_id: &[u8]) -> Result<Option<GroupName>, MlsError> {
        Ok(GroupName::from_extensions(
            &self.group(group_id)?.context().extensions,
        ))
    }

    /// A commit renaming the group (and removing members whose
    /// certificate no longer passes).
    pub fn rename(&mut self, group_id: &[u8], name: &GroupName) -> Result<Outgoing, MlsError> {
        let mut context = self.group(group_id)?.context().extensions.clone();
        context.set(name.extension());
        self.commit_with(group_id, &[], &[], Some(context))
    }
}
