//! Which external commits a group takes: only a member's own re-join.
//!
//! Members publish each epoch's GroupInfo with the key for external
//! commits (RFC 9420 §12.4.3.2), so that a device the relay cut off from a
//! commit can re-join ([`crate::Device::rejoin`]). The relay keeps that
//! GroupInfo, so without a rule anyone the relay hands it to (the relay's
//! operator with an enrolled accomplice, or any enrolled device if the
//! relay is careless) could join any group by an external commit. So an
//! external commit is taken only when it removes exactly one leaf, and
//! mls-rs then requires that leaf to belong to the same device as the new
//! one (`valid_successor`: same person, same device): a device can replace
//! its own leaf, and nothing else. Adding anyone still takes a member's
//! commit and a Welcome.
//!
//! Every member applies this rule to every commit it receives, and the
//! relay's observer applies the same rule before it orders one
//! ([`crate::observer`]); the device that re-joins applies it to the
//! commit it makes.

use mls_rs::MlsRules;
use mls_rs::error::IntoAnyError;
use mls_rs::group::proposal::RemoveProposal;
use mls_rs::group::{GroupContext, Roster};
use mls_rs::mls_rules::{
    CommitDirection, CommitOptions, CommitSource, DefaultMlsRules, EncryptionOptions,
    ProposalBundle,
};

/// An external commit that is not a device's re-join of its own leaf.
#[derive(Debug, thiserror::Error)]
#[error("an external commit must remove exactly one leaf: the committing device's own")]
pub struct NotARejoin;

impl IntoAnyError for NotARejoin {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(Box::new(self))
    }
}

/// mls-rs's default rules with the options given, plus the rule above.
#[derive(Debug, Clone)]
pub struct RejoinOnly(pub DefaultMlsRules);

impl MlsRules for RejoinOnly {
    type Error = NotARejoin;

    fn filter_proposals(
        &self,
        _direction: CommitDirection,
        source: CommitSource,
        _roster: &Roster,
        _context: &GroupContext,
        proposals: ProposalBundle,
    ) -> Result<ProposalBundle, NotARejoin> {
        if let CommitSource::NewMember(_) = source
            && proposals.by_type::<RemoveProposal>().count() != 1
        {
            return Err(NotARejoin);
        }
        Ok(proposals)
    }

    fn commit_options(
        &self,
        roster: &Roster,
        context: &GroupContext,
        proposals: &ProposalBundle,
    ) -> Result<CommitOptions, NotARejoin> {
        self.0
            .commit_options(roster, context, proposals)
            .map_err(|never| match never {})
    }

    fn encryption_options(
        &self,
        roster: &Roster,
        context: &GroupContext,
    ) -> Result<EncryptionOptions, NotARejoin> {
        self.0
            .encryption_options(roster, context)
            .map_err(|never| match never {})
    }
}
