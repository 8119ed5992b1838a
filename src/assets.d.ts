declare module "#scalar-bundle" {
  const path: string;
  export default path;
}

declare module "*.ulaw" {
  const path: string;
  export default path;
}

declare module "*.service" {
  const text: string;
  export default text;
}
