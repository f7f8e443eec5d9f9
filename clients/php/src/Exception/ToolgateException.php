<?php

declare(strict_types=1);

namespace Toolgate\Exception;

/**
 * A problem document (RFC 9457) from the server: every non-2xx answer, and the error
 * of a failed batch or stream entry. The subclass says which code it is
 * (RateLimitedException for `rate_limited`, ...); getErrorCode() is the contract's
 * code, getStatus() (also getCode()) the HTTP status.
 *
 * An answer that was no problem document (from a proxy, say) is a plain
 * ToolgateException with an empty error code and the start of the body as detail.
 */
class ToolgateException extends \RuntimeException implements ExceptionInterface
{
    /** The contract's code of this class; "" for the base class. */
    public const CODE = '';

    /** @var array<string, class-string<ToolgateException>> */
    private const CLASSES = [
        'invalid_json' => InvalidJsonException::class,
        'invalid_arguments' => InvalidArgumentsException::class,
        'unauthorized' => UnauthorizedException::class,
        'forbidden' => ForbiddenException::class,
        'tool_not_found' => ToolNotFoundException::class,
        'payload_too_large' => PayloadTooLargeException::class,
        'rate_limited' => RateLimitedException::class,
        'overloaded' => OverloadedException::class,
        'timeout' => TimeoutException::class,
        'circuit_open' => CircuitOpenException::class,
        'upstream_error' => UpstreamException::class,
        'tool_error' => ToolErrorException::class,
        'cancelled' => CancelledException::class,
        'not_found' => NotFoundException::class,
        'method_not_allowed' => MethodNotAllowedException::class,
        'internal_error' => InternalErrorException::class,
    ];

    /**
     * @param list<FieldError> $errors
     */
    final public function __construct(
        private readonly int $status,
        private readonly string $errorCode,
        private readonly string $title = '',
        private readonly string $detail = '',
        private readonly string $type = '',
        private readonly ?string $tool = null,
        private readonly ?string $traceId = null,
        private readonly array $errors = [],
        private readonly ?float $retryAfter = null,
        ?\Throwable $previous = null,
    ) {
        parent::__construct(self::format($status, $errorCode, $detail !== '' ? $detail : $title, $errors, $traceId), $status, $previous);
    }

    /**
     * The exception for a problem document; the HTTP answer's status, trace id and
     * Retry-After take precedence over the body's.
     *
     * @param array<mixed> $problem
     */
    public static function fromProblem(array $problem, ?int $status = null, ?string $traceId = null, ?float $retryAfter = null): self
    {
        $code = is_string($problem['code'] ?? null) ? $problem['code'] : '';
        if ($status === null) {
            $status = is_int($problem['status'] ?? null) ? $problem['status'] : 0;
        }
        $errors = [];
        if (is_array($problem['errors'] ?? null)) {
            foreach ($problem['errors'] as $e) {
                if (is_array($e)) {
                    $errors[] = new FieldError(self::str($e['pointer'] ?? null), self::str($e['message'] ?? null));
                }
            }
        }
        if ($retryAfter === null) {
            $s = $problem['retry_after_s'] ?? null;
            if ((is_int($s) || is_float($s)) && $s > 0 && is_finite((float) $s)) {
                $retryAfter = (float) $s;
            }
        }
        $class = self::CLASSES[$code] ?? self::class;

        return new $class(
            status: $status,
            errorCode: $code,
            title: self::str($problem['title'] ?? null),
            detail: self::str($problem['detail'] ?? null),
            type: self::str($problem['type'] ?? null),
            tool: is_string($problem['tool'] ?? null) ? $problem['tool'] : null,
            traceId: is_string($problem['trace_id'] ?? null) ? $problem['trace_id'] : $traceId,
            errors: $errors,
            retryAfter: $retryAfter,
        );
    }

    /** The HTTP status (499 for cancelled entries). */
    public function getStatus(): int
    {
        return $this->status;
    }

    /** The contract's code (`rate_limited`, ...); "" when the answer was no problem document. */
    public function getErrorCode(): string
    {
        return $this->errorCode;
    }

    public function getTitle(): string
    {
        return $this->title;
    }

    public function getDetail(): string
    {
        return $this->detail;
    }

    /** A URN made from the code. */
    public function getType(): string
    {
        return $this->type;
    }

    /** The tool, when a tool call failed. */
    public function getTool(): ?string
    {
        return $this->tool;
    }

    /** The request's trace id (also in the X-Trace-Id header). */
    public function getTraceId(): ?string
    {
        return $this->traceId;
    }

    /** @return list<FieldError> for invalid_arguments */
    public function getErrors(): array
    {
        return $this->errors;
    }

    /** Seconds the server asks to wait before trying again (Retry-After), if it said. */
    public function getRetryAfter(): ?float
    {
        return $this->retryAfter;
    }

    /** Whether the request was refused without running and may succeed later. */
    public function isRetryable(): bool
    {
        return $this->status === 429 || $this->status === 503;
    }

    /**
     * The problem document.
     *
     * @return array<string, mixed>
     */
    public function toProblem(): array
    {
        $doc = ['status' => $this->status, 'code' => $this->errorCode];
        foreach (['type' => $this->type, 'title' => $this->title, 'detail' => $this->detail] as $k => $v) {
            if ($v !== '') {
                $doc[$k] = $v;
            }
        }
        if ($this->tool !== null) {
            $doc['tool'] = $this->tool;
        }
        if ($this->traceId !== null) {
            $doc['trace_id'] = $this->traceId;
        }
        if ($this->errors !== []) {
            $doc['errors'] = array_map(static fn (FieldError $e): array => ['pointer' => $e->pointer, 'message' => $e->message], $this->errors);
        }
        if ($this->retryAfter !== null) {
            $doc['retry_after_s'] = $this->retryAfter;
        }

        return $doc;
    }

    private static function str(mixed $v): string
    {
        return is_string($v) ? $v : '';
    }

    /**
     * @param list<FieldError> $errors
     */
    private static function format(int $status, string $code, string $detail, array $errors, ?string $traceId): string
    {
        $text = (string) $status;
        if ($code !== '') {
            $text .= ' ' . $code;
        }
        if ($detail !== '') {
            $text .= ': ' . $detail;
        }
        foreach ($errors as $e) {
            $text .= sprintf('; "%s": %s', $e->pointer, $e->message);
        }
        if ($traceId !== null && $traceId !== '') {
            $text .= ' (trace_id ' . $traceId . ')';
        }

        return $text;
    }
}
