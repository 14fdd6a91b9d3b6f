//! What the Delivery Service's tests share: naming a device.

use blindrelay_ds::DeviceId;
use blindrelay_pki::DeviceName;
use blindrelay_wire::UserName;

/// The device `device` of `user` (both valid names).
pub fn dev(user: &str, device: &str) -> DeviceId {
    DeviceId {
        user: UserName::new(user).unwrap(),
        device: DeviceName::new(device).unwrap(),
    }
}
