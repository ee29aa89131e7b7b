//! A plugin's manifest as the host checks it at load time, then, when it
//! passes, each declared params schema against arbitrary params. Bad
//! manifests and schemas must be errors, never panics.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use rpcnode::plugin::{Hook, Manifest, MethodInfo, Timer, check_manifest};

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let Ok(manifest) = manifest(&mut input) else {
        return;
    };
    let Ok(schemas) = check_manifest(&manifest) else {
        return;
    };
    for schema in schemas.values() {
        let params: Option<&str> = input.arbitrary().unwrap_or_default();
        let _ = schema.check(params);
        let _ = schema.names();
    }
});

fn manifest(input: &mut Unstructured) -> Result<Manifest> {
    let hooks = [
        Hook::BeforeRequest,
        Hook::AfterRequest,
        Hook::OnConnect,
        Hook::OnDisconnect,
    ];
    Ok(Manifest {
        name: input.arbitrary()?,
        version: input.arbitrary()?,
        methods: (0..input.int_in_range(0..=8)?)
            .map(|_| method(input))
            .collect::<Result<_>>()?,
        hooks: (0..input.int_in_range(0..=4)?)
            .map(|_| input.choose(&hooks).copied())
            .collect::<Result<_>>()?,
        timers: (0..input.int_in_range(0..=3)?)
            .map(|_| {
                Ok(Timer {
                    method: input.arbitrary()?,
                    every_ms: input.arbitrary()?,
                })
            })
            .collect::<Result<_>>()?,
    })
}

fn method(input: &mut Unstructured) -> Result<MethodInfo> {
    Ok(MethodInfo {
        name: input.arbitrary()?,
        summary: input.arbitrary()?,
        description: input.arbitrary()?,
        params_schema: input.arbitrary()?,
        result_schema: input.arbitrary()?,
        notification: input.arbitrary()?,
        internal: input.arbitrary()?,
    })
}
