export const stubsRoot = import.meta.dirname
