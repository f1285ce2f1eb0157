//! SCIM 2.0 vocabulary shared by every layer (RFC 7643/7644): attribute paths, PATCH
//! operations, filters and wire types. Pure: nothing here does I/O.

pub mod filter;
pub mod patch;
pub mod path;
pub mod request;
pub mod resource;

pub use filter::EqFilter;
pub use patch::{PatchOp, PatchOperation, PatchRequest};
pub use path::ScimPath;
pub use request::{Method, ScimRequest, ScimResponse};

/// The core User schema URN; attributes of this schema live at the top level of a resource.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Genesys Cloud's User extension (routing skills and languages, external ids).
pub const GENESYS_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
/// The enterprise User extension.
pub const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
