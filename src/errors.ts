/** Typed application errors: each carries an HTTP status and a stable machine-readable code. */

/** Base of every error the API answers on purpose; anything else is a 500. */
export class AppError extends Error {
  /** Response headers that go with the error, e.g. Retry-After. */
  readonly headers: Record<string, string> = {};

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFoundError extends AppError {
  constructor(message: string) {
    super(404, "NOT_FOUND", message);
  }
}

/** An endpoint needs an outside service whose credentials are not configured. */
export class IntegrationNotConfiguredError extends AppError {
  constructor(message: string) {
    super(503, "INTEGRATION_NOT_CONFIGURED", message);
  }
}

/**
 * Twilio placed the call, but the service could not record it or make its stream admissible (the
 * database or Redis failed in that moment): the call was hung up, so trying again rings once.
 */
export class CallNotRecordedError extends AppError {
  constructor() {
    super(
      503,
      "CALL_NOT_RECORDED",
      "The call was placed but could not be recorded, so it was hung up at once; try again",
    );
  }
}

/** The service is draining for shutdown and takes no new calls. */
export class ShuttingDownError extends AppError {
  constructor() {
    super(503, "SHUTTING_DOWN", "The service is shutting down and accepts no new calls");
  }
}
